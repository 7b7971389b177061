#!/usr/bin/env python3
"""Plain onnxruntime greedy loop with a KV cache over a converted model directory.

Checks that SmolLM2 answers "What is the capital of France?" with Paris, and reports decode speed: this is
the Python baseline that the server's single-stream tokens/s is compared against (scripts/bench).

Usage: check_smollm2.py [--model DIR] [--threads N] [--max-tokens N] [--prompt TEXT] [--expect WORD]
                        [--ignore-eos] [--no-spin] [--json]
Decode tokens/s counts the tokens after the first (each one session run with seq = 1); prefill and
time to first token are printed apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jinja2
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / ".cache" / "models" / "smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt", default="What is the capital of France?")
    ap.add_argument("--expect", default="Paris", help="substring the answer must contain ('' to skip)")
    ap.add_argument("--ignore-eos", action="store_true", help="always decode --max-tokens tokens (benchmarks)")
    ap.add_argument("--no-spin", action="store_true", help="session.intra_op.allow_spinning = 0 (busy machines)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with the measurements")
    args = ap.parse_args()

    meta = json.loads((args.model / "model.json").read_text())
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    if args.no_spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(args.model / "model.onnx"), so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0

    prompt = jinja2.Environment().from_string(meta["chat_template"]).render(
        messages=[{"role": "user", "content": args.prompt}], add_generation_prompt=True
    )
    ids = tok.encode(prompt, add_special_tokens=False).ids
    L, KV, D = meta["num_layers"], meta["num_kv_heads"], meta["head_dim"]
    feeds = {f"past_key_values.{i}.{k}": np.zeros((1, KV, 0, D), np.float32) for i in range(L) for k in ("key", "value")}
    names = [o.name for o in sess.get_outputs()]

    def step(new: list[int], past_len: int):
        feeds["input_ids"] = np.array([new], np.int64)
        feeds["attention_mask"] = np.ones((1, past_len + len(new)), np.int64)
        feeds["position_ids"] = np.arange(past_len, past_len + len(new), dtype=np.int64)[None, :]
        out = sess.run(None, feeds)
        for name, val in zip(names[1:], out[1:]):
            feeds[name.replace("present.", "past_key_values.")] = val
        return out[0][0, -1]

    t0 = time.perf_counter()
    logits = step(ids, 0)
    n = len(ids)
    out: list[int] = []
    t_first = time.perf_counter()
    ttft = t_first - t0
    stop = "length"
    while len(out) < args.max_tokens:
        nxt = int(np.argmax(logits))
        if nxt in meta["eos_token_ids"] and not args.ignore_eos:
            stop = "eos"
            break
        out.append(nxt)
        if len(out) == args.max_tokens:
            break
        logits = step([nxt], n)
        n += 1
    t_end = time.perf_counter()
    decode_steps = max(len(out) - 1, 0)
    tps = decode_steps / (t_end - t_first) if decode_steps else 0.0
    answer = tok.decode(out, skip_special_tokens=True)
    print(f"prompt tokens {len(ids)}, generated {len(out)} ({stop}), threads {args.threads}")
    print(f"answer: {answer!r}")
    print(f"session load {load_s:.2f} s, prefill/TTFT {ttft * 1000:.1f} ms, decode {tps:.1f} tokens/s")
    if args.json:
        print(json.dumps({"threads": args.threads, "prompt_tokens": len(ids), "generated_tokens": len(out),
                          "finish": stop, "load_s": round(load_s, 3), "ttft_ms": round(ttft * 1000, 2),
                          "decode_tokens_per_s": round(tps, 2), "answer": answer}))
    if args.expect and args.expect not in answer:
        print(f"FAIL: answer lacks {args.expect!r}")
        sys.exit(1)
    if args.expect:
        print(f"ok: answer contains {args.expect!r}")


if __name__ == "__main__":
    main()
