#!/usr/bin/env bash
# Copies the real evidence from shared/vectors into fuzz/corpus/<target>/ as seeds.
# Usage: fuzz/seed.sh [VECTORS_DIR]   (default: ../shared/vectors next to the checkout)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vectors="${1:-$here/../../shared/vectors}"
[ -d "$vectors/tdx" ] || { echo "seed.sh: no vectors at $vectors" >&2; exit 2; }

seed() { # target file...
  local target="$1"; shift
  mkdir -p "$here/corpus/$target"
  for f in "$@"; do
    # Name seeds by their path under the vectors so equal basenames do not collide.
    [ -f "$f" ] && cp "$f" "$here/corpus/$target/$(realpath --relative-to="$vectors" "$f" | tr / _)"
  done
  return 0
}
unhex() { # target name hexfile
  mkdir -p "$here/corpus/$1"
  tr -d ' \n\r\t' < "$3" | xxd -r -p > "$here/corpus/$1/$2"
}

t="$vectors/tdx"; s="$vectors/snp"
seed quote_parse "$t/tdx_quote" "$t/sgx_quote" "$t/tdx_quote_outdated" "$t/tdx_quote_4.dat" \
  "$t/tdx_prod_quote_SPR_E4.dat" "$t/occlum_quote.dat" "$t/az_td_quote.bin" \
  "$t"/intel-synthetic/*/quote*
unhex quote_parse quote_hex.bin "$t/quote_hex.txt"
unhex quote_parse tdx-quote.bin "$t/tdx-quote.hex"

seed snp_report_parse "$s/attestation.bin" "$s/test-report.bin" "$s/DERIVED_e2e_snp_report.bin"
unhex snp_report_parse report_milan.bin "$s/report_milan.hex"

seed collateral_json "$t"/*collateral*.json

unhex gpu_evidence_parse hopper.bin "$vectors/gpu/hopperAttestationReport.txt"

mkdir -p "$here/corpus/policy_toml"
for f in "$here"/../docs/examples/*.toml; do [ -f "$f" ] && cp "$f" "$here/corpus/policy_toml/"; done
printf "version = 1\n[tdx]\nallow_debug = true\n" > "$here/corpus/policy_toml/minimal.toml"

seed evidence_encoding "$t/quote_hex.txt" "$t/trusted_root.pem" "$s/ask_ark_milan.pem" \
  "$s/milan_ask_ark_asvk.pem" "$s/vcek_milan.der" "$s/report_milan.hex"

mkdir -p "$here/corpus/ratls_certificate"
cp "$here"/../tests/data/ratls/*.der "$here/corpus/ratls_certificate/"

seed eventlog_parse "$vectors"/eventlog/CCEL_data* "$vectors/eventlog/ccel.bin"

for d in "$here"/corpus/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
