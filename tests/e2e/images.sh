#!/usr/bin/env bash
# The guest image is reproducible: images/build run twice, into two folders, from two copies of
# the model that differ in file times and modes (as two checkouts would), with different umasks,
# gives byte-identical vmlinuz, initrd.img, model.img, model.verity, cmdline.txt and
# manifest.json; the manifest's sha256s match the files and its verity root is on the command
# line.
#
# ~20 s once the debug binaries are built (two builds of ~9 s on 2 shared cores): scripts/test
# runs it (COCOON_TEST_IMAGES=0 skips it). Needs cpio and squashfs-tools (.ci/run installs them)
# and, the first time, the network for the pinned Debian packages (~75 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${COCOON_TEST_IMAGES:-1}" = 0 ]; then
  echo "e2e images: SKIPPED (COCOON_TEST_IMAGES=0)"
  exit 0
fi
for tool in cpio mksquashfs; do
  command -v "$tool" >/dev/null || { echo "e2e images: FAILED: $tool missing (.ci/run installs it)"; exit 1; }
done

work="$(mktemp -d "$PWD/images/out/.e2e.XXXXXX" 2>/dev/null || { mkdir -p images/out && mktemp -d "$PWD/images/out/.e2e.XXXXXX"; })"
trap 'rm -rf "$work"' EXIT

# Two copies of the model, with different mtimes and modes.
mkdir -p "$work/model-a" "$work/model-b"
cp tests/data/models/successor/{model.json,model.onnx,tokenizer.json} "$work/model-a/"
cp tests/data/models/successor/{model.json,model.onnx,tokenizer.json} "$work/model-b/"
touch -d '2001-02-03 04:05:06' "$work/model-a/"*
chmod 0600 "$work/model-b/"*

# The debug binaries scripts/test has built (--all-features), so that this test adds no release
# build; the recipe is the same whatever binaries it packs.
cargo build --quiet --workspace --all-features --bins
bin="${CARGO_TARGET_DIR:-target}/debug"
bins=(--enclave "$bin/cocoon-enclave" --verify "$bin/cocoon-verify")
start=$(date +%s)
(umask 022 && images/build --name repro-a --model "$work/model-a" --out "$work/a" "${bins[@]}")
mid=$(date +%s)
(umask 077 && images/build --name repro-a --model "$work/model-b" --out "$work/b" "${bins[@]}")
end=$(date +%s)
echo "e2e images: builds took $((mid - start)) s and $((end - mid)) s"

status=0
for f in vmlinuz initrd.img rootfs.img rootfs.verity model.img model.verity cmdline.txt manifest.json; do
  if cmp -s "$work/a/$f" "$work/b/$f"; then
    echo "e2e images: $f identical ($(sha256sum "$work/a/$f" | cut -c1-16)…)"
  else
    echo "e2e images: FAILED: $f differs between the two builds"
    status=1
  fi
done
[ "$(cd "$work/a" && ls | sort)" = "$(cd "$work/b" && ls | sort)" ] || { echo "e2e images: FAILED: file lists differ"; status=1; }

python3 - "$work/a" <<'PY' || status=1
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
for name, entry in m["files"].items():
    digest = hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest()
    assert digest == entry["sha256"], f"manifest sha256 of {name} is wrong"
root = m["verity"]["model"]["root_hash"]
cmdline = open(os.path.join(d, "cmdline.txt")).read().strip()
assert cmdline == m["cmdline"], "cmdline.txt differs from the manifest"
assert f"cocoon.model_verity={root}" in cmdline, "the verity root is not on the command line"
rroot = m["verity"]["rootfs"]["root_hash"]
assert f"cocoon.rootfs_verity={rroot}" in cmdline, "the rootfs verity root is not on the command line"
assert len(m["expected_measurements"]["snp"]["measurement"]) == 96
assert len(m["expected_measurements"]["tdx"]["mrtd"]) == 96
print("e2e images: manifest sha256s match the files; verity root on the command line")
PY
exit "$status"
