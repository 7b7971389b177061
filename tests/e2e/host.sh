#!/usr/bin/env bash
# cocoon-host → cocoon-enclave (process platform, simulated TDX) → cocoon client, end to end
# (issue #7): the agent serves the committed successor model; `cocoon attest` verifies the enclave
# under the policy printed by `cocoon-host policy`, and its verified claims and measurements equal
# what `cocoon-host measure` published; kill -9 of the enclave → the agent restarts it within 5 s
# and a fresh client verification succeeds; restarting the agent re-adopts the enclave (same pid,
# one process). Needs ORT (scripts/setup); run by scripts/test after the --all-features build.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${COCOON_E2E_NO_BUILD:-}" ]; then
  cargo build --quiet --workspace --all-features --bins
fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}/debug")"
py=.cache/venv/bin/python
[ -x "$py" ] || py=python3
work="$(mktemp -d)"
agent=""
cleanup() {
  status=$?
  if [ -n "$agent" ]; then
    "$bin/cocoon-host" stop e2e --state "$work/state" >/dev/null 2>&1 || true
    "$bin/cocoon-host" stop e2e-snp --state "$work/state" >/dev/null 2>&1 || true
    kill "$agent" 2>/dev/null || true
    wait "$agent" 2>/dev/null || true
  fi
  [ "$status" = 0 ] || cat "$work/agent.log" "$work/state/e2e.log" 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
fail() { echo "e2e host: $*"; exit 1; }

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$work/conf"
echo 'greeting = "measured"' > "$work/conf/app.toml"
port2="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/e2e.toml" <<SPEC
# A fleet file: the main VM on simulated TDX with sealed bodies required, a second one on
# simulated SNP without HPKE.
[[vm]]
name = "e2e"
platform = "process"
vcpus = 1
memory_mib = 512
config_dir = "$work/conf"
model.dir = "$PWD/tests/data/models/successor"
ports.api = $port
runtime.threads = 1
enclave.hpke = "required"
enclave.attester = "sim-tdx"
enclave.gpu = "sim"                 # one simulated H100 bound into the identity

[[vm]]
name = "e2e-snp"
platform = "process"
model.dir = "$PWD/tests/data/models/successor"
ports.api = $port2
runtime.threads = 1
enclave.hpke = "off"
enclave.attester = "sim-snp"
SPEC

"$bin/cocoon-host" check "$work/e2e.toml" >/dev/null || fail "check refused a good spec"

start_agent() {
  "$bin/cocoon-host" serve --state "$work/state" "$work/e2e.toml" >>"$work/agent.log" 2>&1 &
  agent=$!
  for _ in $(seq 1 200); do [ -S "$work/state/host.sock" ] && return 0; sleep 0.1; done
  fail "the agent did not start"
}
host() { "$bin/cocoon-host" "$@" --state "$work/state"; }
field() { "$py" -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
attest() { # [PORT POLICY OUT] the client verifies under the host's policy; writes the identity JSON
  for _ in $(seq 1 100); do
    if "$bin/cocoon" attest "127.0.0.1:${1:-$port}" --policy "${2:-$work/policy.toml}" --trust-simulated-root \
      --nonce --json >"${3:-$work/identity.json}" 2>"$work/attest.err"; then
      return 0
    fi
    sleep 0.1
  done
  cat "$work/attest.err"; fail "the client could not verify the enclave"
}

start_agent
host policy e2e >"$work/policy.toml"
host measure e2e >"$work/measure.json"
attest
"$py" - "$work/measure.json" "$work/identity.json" <<'PY' || fail "verified claims differ from the published measurements"
import json, sys
m = json.load(open(sys.argv[1])); v = json.load(open(sys.argv[2]))
assert v["verdict"] == "verified" and v["simulated"] is True, v
assert v["claims"]["model"]["blake3"] == m["claims"]["model_blake3"], (v["claims"], m["claims"])
assert v["claims"]["config_digest"] == m["claims"]["config_digest"], (v["claims"], m["claims"])
assert v["claims"]["hpke_public_key"] is not None
for key in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"):
    assert v["measurements"][key] == m["tdx"][key], key
assert m["claims"]["gpus"] == 1 and v["claims"]["gpu"]["count"] == 1, (m["claims"], v["claims"])
assert len(v["gpus"]) == 1 and v["gpus"][0]["arch"] == "Hopper", v["gpus"]
PY
grep -q '^\[gpu\]' "$work/policy.toml" || fail "the published policy does not require the GPU"
host policy e2e-snp >"$work/policy-snp.toml"
host measure e2e-snp >"$work/measure-snp.json"
attest "$port2" "$work/policy-snp.toml" "$work/identity-snp.json"
"$py" - "$work/measure-snp.json" "$work/identity-snp.json" <<'PY' || fail "SNP: verified claims differ from the published measurements"
import json, sys
m = json.load(open(sys.argv[1])); v = json.load(open(sys.argv[2]))
assert v["verdict"] == "verified" and "snp" in v["platform"].lower(), v["platform"]
assert v["measurements"]["measurement"] == m["snp"]["measurement"]
assert v["claims"]["model"]["blake3"] == m["claims"]["model_blake3"]
assert v["claims"]["hpke_public_key"] is None and m["claims"]["require_hpke_key"] is False
PY
if "$bin/cocoon" attest "127.0.0.1:$port2" --policy "$work/policy.toml" --trust-simulated-root \
  >/dev/null 2>&1; then
  fail "the TDX VM's policy accepted the SNP VM"
fi
echo "e2e host: verified claims equal the published measurements (sim-tdx with a sim H100 bound in, and sim-snp); one VM's policy refuses the other"

for _ in $(seq 1 300); do # 503 while the model loads
  health="$(host health e2e | field 'v["status"]')"
  [ "$health" = 200 ] && break
  sleep 0.1
done
[ "$health" = 200 ] || fail "health answered $health"
echo "e2e host: cocoon-host health sees the enclave ready"

pid="$(host status e2e | field 'v["pid"]')"
kill -9 "$pid"
t0=$(date +%s.%N)
for _ in $(seq 1 50); do
  new="$(host status e2e | field 'v["pid"] if v["status"] == "running" else ""')"
  [ -n "$new" ] && [ "$new" != "None" ] && [ "$new" != "$pid" ] && break
  sleep 0.1
done
[ -n "$new" ] && [ "$new" != "None" ] && [ "$new" != "$pid" ] || fail "no restart within 5 s of kill -9"
echo "e2e host: restarted after kill -9 in $("$py" -c "print(round($(date +%s.%N) - $t0, 2))") s"
attest
echo "e2e host: the client reconnected with a fresh verification"

kill -TERM "$agent"; wait "$agent" || true; agent=""
kill -0 "$new" || fail "the enclave did not outlive the agent"
start_agent
again="$(host status e2e | field 'v["pid"]')"
[ "$again" = "$new" ] || fail "re-adoption: pid $again, expected $new"
copies="$("$py" - "$port" <<'PY'
import os, sys
listen = f"127.0.0.1:{sys.argv[1]}".encode()
n = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if argv and argv[0].endswith(b"cocoon-enclave") and listen in argv:
        n += 1
print(n)
PY
)"
[ "$copies" = 1 ] || fail "$copies enclave processes after re-adoption"
attest
echo "e2e host: the restarted agent re-adopted the enclave (pid $again, one process)"
