# Shared by the bench scripts: `result` records one measurement for `bench/run`'s table and
# JSON when $BENCH_RESULTS names a file (one JSON object a line); it does nothing otherwise,
# so each script still runs alone and prints its own tables.
#
#   result WORKLOAD VALUE UNIT [PEER PEER_VALUE] [PEAK_MIB]
#
# UNIT is `s` (lower is better) or a rate such as `req/s` (higher is better); PEER names what
# the same work was measured with in the same run, PEER_VALUE its value in the same unit.
result() {
  [ -n "${BENCH_RESULTS:-}" ] || return 0
  python3 - "$@" >>"$BENCH_RESULTS" <<'PY'
import json, sys
a = sys.argv[1:] + [""] * 6
num = lambda s: float(s) if s not in ("", None) else None
print(json.dumps({"workload": a[0], "tenure": num(a[1]), "unit": a[2], "peer": a[3] or None,
                  "peer_value": num(a[4]), "peak_mib": num(a[5])}))
PY
}
