#!/usr/bin/env python3
"""Decode benchmark (issue #4), run by scripts/bench: the engine (`decode_bench`, release build) vs a
plain Python onnxruntime greedy loop with KV cache (scripts/models/check_smollm2.py) on the same
ONNX file, the same thread count and the same prompt, alternated round by round in one run so
drift hits both sides alike. Prints a table of medians and ratios against the targets.

usage: bench_inference.py DECODE_BENCH_BIN [--model DIR] [--threads 2] [--tokens 128] [--streams 8] [--rounds 3]
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Write a long story about a dragon who learns to bake bread."


def last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"bench_inference: no JSON line in output:\n{text}")


def run(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_inference: {' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return last_json(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("decode_bench", type=Path)
    ap.add_argument("--model", type=Path, default=ROOT / ".cache" / "models" / "smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    python = ROOT / ".cache" / "venv" / "bin" / "python"
    py_cmd = [str(python), str(ROOT / "scripts" / "models" / "check_smollm2.py"), "--model", str(args.model),
              "--threads", str(args.threads), "--max-tokens", str(args.tokens), "--prompt", PROMPT,
              "--expect", "", "--json"]
    rs_cmd = [str(args.decode_bench), str(args.model), "--threads", str(args.threads), "--tokens",
              str(args.tokens), "--streams", str(args.streams), "--chat", "--prompt", PROMPT]

    ours, theirs = [], []
    for r in range(args.rounds):
        theirs.append(run(py_cmd))
        ours.append(run(rs_cmd))
        print(f"round {r + 1}/{args.rounds}: engine {ours[-1]['single_decode_tps']:.1f} tok/s, "
              f"python {theirs[-1]['decode_tokens_per_s']:.1f} tok/s, "
              f"{args.streams} streams {ours[-1]['aggregate_tps']:.1f} tok/s", file=sys.stderr)

    med = statistics.median
    single = med(o["single_decode_tps"] for o in ours)
    base = med(t["decode_tokens_per_s"] for t in theirs)
    aggregate = med(o["aggregate_tps"] for o in ours)
    agg_ratio = med(o["aggregate_over_single"] for o in ours)
    ttft = med(o["single_ttft_ms"] for o in ours)
    ttft_py = med(t["ttft_ms"] for t in theirs)
    generated = theirs[0]["generated_tokens"]

    def verdict(ratio: float, target: float) -> str:
        return "met" if ratio >= target else "MISSED"

    print(f"model {args.model.name}, {args.threads} threads, prompt {theirs[0]['prompt_tokens']} tokens, "
          f"up to {args.tokens} generated ({generated} by the Python loop), medians of {args.rounds} alternated rounds")
    print(f"{'benchmark':<28}{'ours':>10}{'baseline':>10}{'ratio':>8}{'target':>8}  baseline")
    print(f"{'decode tok/s, 1 stream':<28}{single:>10.1f}{base:>10.1f}{single / base:>7.2f}x{0.97:>7.2f}x  "
          f"Python onnxruntime greedy loop with KV cache ({verdict(single / base, 0.97)})")
    print(f"{f'decode tok/s, {args.streams} streams':<28}{aggregate:>10.1f}{single:>10.1f}{agg_ratio:>7.2f}x{2.5:>7.2f}x  "
          f"the engine with 1 stream ({verdict(agg_ratio, 2.5)})")
    print(f"{'time to first token, ms':<28}{ttft:>10.1f}{ttft_py:>10.1f}{ttft / ttft_py:>7.2f}x{'-':>8}  "
          f"the Python loop's prefill (lower is better)")


if __name__ == "__main__":
    main()
