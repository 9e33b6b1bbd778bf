"""Model-fitting benchmark helper: simulate a BG/NBD + Gamma-Gamma customer summary, and fit
it with lifetimes for comparison with `tenure analytics clv --from-summary`.

    python models.py simulate N FILE [SEED]
    python models.py simulate-pareto N FILE [SEED]
    python models.py lifetimes FILE
    python models.py lifetimes-pareto FILE
"""
import json
import sys
import time

import numpy as np


def simulate(n, path, seed=7):
    rng = np.random.default_rng(seed)
    # Parameters near the CDNOW fit, in weeks; observation windows of 26 to 78 weeks.
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    p, q, gamma = 6.25, 3.74, 15.44
    T = rng.uniform(26.0, 78.0, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.nonzero(alive)[0]
        t[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        inside = t[idx] <= T[idx]
        done = idx[~inside]
        alive[done] = False
        bought = idx[inside]
        x[bought] += 1
        t_x[bought] = t[bought]
        # After each repeat purchase the customer drops out with probability p.
        gone = bought[rng.random(bought.size) < drop[bought]]
        alive[gone] = False
    nu = rng.gamma(q, 1.0 / gamma, n)
    zbar = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-9), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    with open(path, "w") as f:
        f.write("customer_id,frequency,recency,T,monetary_value\n")
        for i in range(n):
            f.write(f"{i},{int(x[i])},{t_x[i]:.6f},{T[i]:.6f},{zbar[i]:.6f}\n")


def simulate_pareto(n, path, seed=11):
    rng = np.random.default_rng(seed)
    # Parameters near the CDNOW Pareto/NBD fit, in weeks; observation windows of 26 to 78 weeks.
    r, alpha, s, beta = 0.553, 10.578, 0.606, 11.669
    T = rng.uniform(26.0, 78.0, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0, n) / mu
    end = np.minimum(T, lifetime)
    # Repeat purchases while alive form a Poisson process: their count is Poisson and, given
    # the count, the last one is the maximum of that many uniform times.
    x = rng.poisson(lam * end)
    t_x = np.where(x > 0, end * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    with open(path, "w") as f:
        f.write("customer_id,frequency,recency,T\n")
        for i in range(n):
            f.write(f"{i},{int(x[i])},{t_x[i]:.6f},{T[i]:.6f}\n")


def fit_lifetimes_pareto(path):
    import pandas as pd
    from lifetimes import ParetoNBDFitter

    df = pd.read_csv(path)
    started = time.perf_counter()
    f = ParetoNBDFitter(penalizer_coef=0.0).fit(df["frequency"], df["recency"], df["T"])
    seconds = time.perf_counter() - started
    params = [f.params_[k] for k in ("r", "alpha", "s", "beta")]
    ll = float(np.sum(ParetoNBDFitter._conditional_log_likelihood(
        params, df["frequency"].values.astype(float), df["recency"].values, df["T"].values)))
    p_alive = f.conditional_probability_alive(df["frequency"], df["recency"], df["T"])
    print(json.dumps({"params": params, "log_likelihood": ll, "seconds": seconds,
                      "p_alive": [float(v) for v in np.asarray(p_alive)[:1000]]}))


def bgnbd_ll(params, x, t_x, T):
    from scipy.special import betaln, gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    l1 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        l2 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(a1 + a2 + np.logaddexp(l1, l2)))


def gg_ll(params, x, z):
    from scipy.special import gammaln

    p, q, g = params
    px = p * x
    return float(np.sum(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                        + (px - 1) * np.log(z) + px * np.log(x) - (px + q) * np.log(g + x * z)))


def fit_lifetimes(path):
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    df = pd.read_csv(path)
    x, t_x, T = df["frequency"].values.astype(float), df["recency"].values, df["T"].values
    started = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(df["frequency"], df["recency"], df["T"])
    bg_seconds = time.perf_counter() - started
    bg = [bgf.params_[k] for k in ("r", "alpha", "a", "b")]
    repeat = df[(df["frequency"] > 0) & (df["monetary_value"] > 0)]
    started = time.perf_counter()
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    gg_seconds = time.perf_counter() - started
    gg = [ggf.params_[k] for k in ("p", "q", "v")]
    print(json.dumps({
        "bgnbd": {"params": bg, "log_likelihood": bgnbd_ll(bg, x, t_x, T), "seconds": bg_seconds},
        "gamma_gamma": {"params": gg, "customers": len(repeat),
                        "log_likelihood": gg_ll(gg, repeat["frequency"].values.astype(float),
                                                repeat["monetary_value"].values),
                        "seconds": gg_seconds},
    }))


if __name__ == "__main__":
    if sys.argv[1] == "simulate":
        simulate(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 7)
    elif sys.argv[1] == "simulate-pareto":
        simulate_pareto(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 11)
    elif sys.argv[1] == "lifetimes-pareto":
        fit_lifetimes_pareto(sys.argv[2])
    elif sys.argv[1] == "lifetimes":
        fit_lifetimes(sys.argv[2])
