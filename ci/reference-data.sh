#!/usr/bin/env bash
# Prints the folder holding the CDNOW reference data the model tests check against:
# $TENURE_REFERENCE_DATA or ../shared/data when it is there; otherwise the same three files
# (the CDNOW sample and its two summaries) taken from the `Lifetimes` wheel on PyPI into
# .venv-ci/reference-data, each checked against the digest of the published file.
set -euo pipefail
cd "$(dirname "$0")/.."

for d in "${TENURE_REFERENCE_DATA:-}" ../shared/data; do
  if [ -n "$d" ] && [ -f "$d/cdnow/CDNOW_sample.txt" ]; then
    (cd "$d" && pwd)
    exit 0
  fi
done

out=.venv-ci/reference-data
if [ ! -f "$out/cdnow/CDNOW_sample.txt" ]; then
  [ -x .venv-ci/bin/pip ] || python3 -m venv .venv-ci
  wheels="$(mktemp -d)"
  .venv-ci/bin/pip download -q --no-deps 'lifetimes==0.11.3' -d "$wheels" >&2
  mkdir -p "$out/cdnow"
  python3 - "$wheels" "$out/cdnow" <<'PY'
import glob, hashlib, sys, zipfile
wheels, dest = sys.argv[1], sys.argv[2]
expected = {
    "CDNOW_sample.txt": "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
    "cdnow_customers_summary.csv": "09d92ca80daaabe8be0f997d4c539f9c9606106baa5b199081fe01cbce5fa9f6",
    "cdnow_customers_summary_with_transactions.csv": "7ddd11b55be3227edfc1d58675154e96971b0de3ad37ddd9280d1dba154b8b2f",
}
wheel = zipfile.ZipFile(glob.glob(f"{wheels}/*.whl")[0])
for name, digest in expected.items():
    data = wheel.read(f"lifetimes/datasets/{name}")
    if hashlib.sha256(data).hexdigest() != digest:
        sys.exit(f"{name} in the wheel is not the published file")
    with open(f"{dest}/{name}", "wb") as f:
        f.write(data)
PY
  rm -rf "$wheels"
fi
(cd "$out" && pwd)
