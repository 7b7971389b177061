#!/usr/bin/env bash
# The official OpenAI Python SDK, unchanged, against `cocoon gateway` in front of `cocoon-enclave`
# serving SmolLM2 on the simulated TEE with sealed bodies required (--hpke required, so every
# prompt crosses as HPKE ciphertext inside RA-TLS) (tests/e2e/openai_gateway.py): chat, streamed chat and
# models.list() answer; a gateway whose policy pins another model digest refuses with an
# OpenAI-style error and nothing reaches the enclave. Needs scripts/setup (venv with `openai`,
# ORT, SmolLM2); run by scripts/test after the --all-features build.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --workspace --all-features --bins
bin="${CARGO_TARGET_DIR:-target}/debug"
python=.cache/venv/bin/python
model=.cache/models/smollm2-135m-instruct
if [ ! -x "$python" ] || [ ! -f "$model/model.onnx" ]; then
  echo "e2e gateway: run scripts/setup first (venv and SmolLM2 missing)"; exit 1
fi
work="$(mktemp -d)"
pids=()
cleanup() { status=$?; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; exit "$status"; }
trap cleanup EXIT

wait_for() { # file pattern what
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "e2e gateway: $3 did not start:"; cat "$1" "$1.log" 2>/dev/null; exit 1
}

"$bin/cocoon-enclave" serve --listen 127.0.0.1:0 --attester sim-tdx --model-dir "$model" --threads 2 --hpke required \
  ${COCOON_E2E_ENCLAVE_ARGS:-} >"$work/enclave" 2>"$work/enclave.log" &
pids+=($!)
wait_for "$work/enclave" "listening on" "the enclave"
enclave="$(sed -n 's/.*listening on \([0-9.:]*\) .*/\1/p' "$work/enclave")"

printf 'version = 1\nallow_simulated = true\n' > "$work/sim.toml"
printf 'version = 1\nallow_simulated = true\n[claims]\nmodel_blake3 = ["%064d"]\n' 0 > "$work/other-model.toml"

start_gateway() { # name policy
  "$bin/cocoon" gateway --listen 127.0.0.1:0 --upstream "https://$enclave" --policy "$2" \
    --trust-simulated-root >"$work/$1" 2>"$work/$1.log" &
  pids+=($!)
  wait_for "$work/$1" "listening on" "gateway $1"
  sed -n 's/.*listening on \(http:[^ ]*\) .*/\1/p' "$work/$1"
}
good="$(start_gateway good "$work/sim.toml")"
wrong="$(start_gateway wrong "$work/other-model.toml")"

"$python" tests/e2e/openai_gateway.py --gateway "$good" --refusing-gateway "$wrong" --enclave "$enclave"
if grep -qi "capital of France" "$work/good.log" "$work/enclave.log"; then
  echo "e2e gateway: a prompt reached a log"; exit 1
fi
echo "e2e gateway: the OpenAI Python SDK works through cocoon gateway; a wrong policy is refused"
