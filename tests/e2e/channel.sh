#!/usr/bin/env bash
# End to end across the real binaries on the simulated TEE: `cocoon-enclave serve` (sim TDX, then
# sim SNP) checked by `cocoon-verify endpoint --nonce`; a policy pinning another MRTD is refused
# (exit 1). Run by scripts/test after the --all-features test run (which built both binaries
# with the `sim` feature).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --workspace --all-features --bins
bin="${CARGO_TARGET_DIR:-target}/debug"
work="$(mktemp -d)"
enclave_pid=""
cleanup() { status=$?; [ -n "$enclave_pid" ] && kill "$enclave_pid" 2>/dev/null; rm -rf "$work"; exit "$status"; }
trap cleanup EXIT

start_enclave() { # attester
  "$bin/cocoon-enclave" serve --listen 127.0.0.1:0 --attester "$1" > "$work/enclave.out" 2>&1 &
  enclave_pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$work/enclave.out" 2>/dev/null && break
    sleep 0.1
  done
  addr="$(sed -n 's/.*listening on \([0-9.:]*\) .*/\1/p' "$work/enclave.out")"
  key="$(sed -n 's/.*key sha256:\([0-9a-f]*\).*/\1/p' "$work/enclave.out")"
  [ -n "$addr" ] || { echo "e2e: enclave did not start:"; cat "$work/enclave.out"; exit 1; }
}
stop_enclave() { kill "$enclave_pid"; wait "$enclave_pid" 2>/dev/null || true; enclave_pid=""; }

check_json() { # file platform key
  python3 - "$@" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["verdict"] == "accepted", report
assert report["platform"] == sys.argv[2], report["platform"]
assert report["endpoint"]["fresh"] is True, report["endpoint"]
text = json.dumps(report)
assert sys.argv[3] in text, "the server's key digest is not in the report"
PY
}

# Simulated evidence needs both the flag (trust the sim roots) and a policy that allows it.
printf 'version = 1\nallow_simulated = true\n' > "$work/sim.toml"
for platform in tdx snp; do
  start_enclave "sim-$platform"
  "$bin/cocoon-verify" endpoint "$addr" --trust-simulated-root --policy "$work/sim.toml" --nonce --json > "$work/report.json" \
    || { echo "e2e: cocoon-verify endpoint refused sim-$platform:"; cat "$work/report.json"; exit 1; }
  check_json "$work/report.json" "sim-$platform" "$key"
  echo "e2e: cocoon-enclave (sim-$platform) at $addr verified by cocoon-verify endpoint --nonce"
  if [ "$platform" = tdx ]; then
    printf 'version = 1\nallow_simulated = true\n[tdx]\nmrtd = ["%096d"]\n' 0 > "$work/other.toml"
    set +e
    "$bin/cocoon-verify" endpoint "$addr" --trust-simulated-root --policy "$work/other.toml" > "$work/refused.txt" 2>&1
    status=$?
    set -e
    [ "$status" = 1 ] || { echo "e2e: expected exit 1 for another MRTD, got $status"; cat "$work/refused.txt"; exit 1; }
    grep -qi "mrtd" "$work/refused.txt" || { echo "e2e: refusal does not name the MRTD"; cat "$work/refused.txt"; exit 1; }
    echo "e2e: a policy pinning another MRTD is refused (exit 1)"
  fi
  stop_enclave
done
