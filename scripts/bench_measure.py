#!/usr/bin/env python3
"""SNP launch digest benchmark (issue #6): `cocoon-verify measure snp` vs virtee's
`sev-snp-measure` (pinned in scripts/requirements.txt) on the same files, as the commands an
auditor runs: each run is a fresh process (start-up, reading and hashing the files, output),
the two alternate run by run, and both must print the same digest.

Inputs: Debian sid OVMF.amdsev.fd (shared/vectors/measure/firmware), the Debian kernel from
scripts/fetch-kernel, a deterministic 32 MiB initrd (.cache/kernel/initrd.bench, made here:
Python's random.Random(0) bytes; a typical Debian initrd is 30-60 MiB), 2 vCPUs, EPYC-v4, QEMU.

Usage: bench_measure.py COCOON_VERIFY VECTORS [RUNS]
Env:   SEV_SNP_MEASURE=path of the sev-snp-measure script (default .cache/venv/bin/sev-snp-measure)
"""
import os
import random
import statistics
import subprocess
import sys
import time

def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours_bin, vectors = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ovmf = os.path.join(vectors, "measure/firmware/OVMF.amdsev.fd.sid-2026.08+ds-2")
    kernel = os.path.join(root, ".cache/kernel/vmlinuz")
    initrd = os.path.join(root, ".cache/kernel/initrd.bench")
    tool = os.environ.get("SEV_SNP_MEASURE") or os.path.join(root, ".cache/venv/bin/sev-snp-measure")
    for path in (ovmf, kernel, tool):
        if not os.path.exists(path):
            print(f"bench_measure: missing {path} (run scripts/setup)", file=sys.stderr)
            return 2
    if not os.path.exists(initrd) or os.path.getsize(initrd) != 32 << 20:
        with open(initrd + ".tmp", "wb") as f:
            f.write(random.Random(0).randbytes(32 << 20))
        os.replace(initrd + ".tmp", initrd)
    append = "console=ttyS0 root=/dev/vda ro"
    common = ["--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", ovmf, "--kernel", kernel,
              "--initrd", initrd, "--append", append]
    ours_cmd = [ours_bin, "measure", "snp", "--json"] + common
    theirs_cmd = [tool, "--mode", "snp", "--vmm-type", "QEMU"] + common
    startup_cmd = [os.path.join(os.path.dirname(tool), "python"), "-c", "import sevsnpmeasure.cli"]

    def timed(cmd):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return time.perf_counter() - t0, out

    import json
    # Warm the page cache and check both agree before timing.
    _, o = timed(ours_cmd)
    _, t = timed(theirs_cmd)
    digest = json.loads(o)["measurement"]
    if digest != t.strip():
        print(f"bench_measure: digests differ: ours {digest}, sev-snp-measure {t.strip()}", file=sys.stderr)
        return 1
    fw_only = ["--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", ovmf]
    ours_fw = [ours_bin, "measure", "snp", "--json"] + fw_only
    theirs_fw = [tool, "--mode", "snp", "--vmm-type", "QEMU"] + fw_only
    ours, theirs, startup, ours_f, theirs_f = [], [], [], [], []
    for _ in range(runs):
        ours.append(timed(ours_cmd)[0])
        theirs.append(timed(theirs_cmd)[0])
        startup.append(timed(startup_cmd)[0])
        ours_f.append(timed(ours_fw)[0])
        theirs_f.append(timed(theirs_fw)[0])
    mo, mt, ms, mof, mtf = (statistics.median(x) * 1000 for x in (ours, theirs, startup, ours_f, theirs_f))
    size = sum(os.path.getsize(p) for p in (ovmf, kernel, initrd)) / (1 << 20)
    print(f"SNP launch digest, {runs} alternating runs each (median wall time of the whole command), "
          f"inputs {size:.1f} MiB: OVMF.amdsev.fd 4 MiB + vmlinuz-6.1.0-56-amd64 + 32 MiB initrd, 2 vCPUs")
    print(f"digest {digest}")
    print(f"{'series':<44}{'median ms':>10}{'min ms':>10}{'ratio':>9}{'target':>16}")
    print(f"{'cocoon-verify measure snp':<44}{mo:>10.1f}{min(ours)*1000:>10.1f}{'1.00x':>9}{'-':>16}")
    ratio = mt / mo
    verdict = "met" if ratio >= 20 else "NOT met"
    print(f"{'sev-snp-measure 0.0.13 (Python)':<44}{mt:>10.1f}{min(theirs)*1000:>10.1f}{ratio:>8.1f}x{f'>= 20x ({verdict})':>16}")
    print(f"{'  Python start-up + import alone':<44}{ms:>10.1f}{min(startup)*1000:>10.1f}{ms/mo:>8.1f}x{'-':>16}")
    print(f"{'firmware only (no kernel): ours':<44}{mof:>10.1f}{min(ours_f)*1000:>10.1f}{'1.00x':>9}{'-':>16}")
    print(f"{'firmware only (no kernel): sev-snp-measure':<44}{mtf:>10.1f}{min(theirs_f)*1000:>10.1f}{mtf/mof:>8.1f}x{'-':>16}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
