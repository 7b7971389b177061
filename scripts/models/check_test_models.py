#!/usr/bin/env python3
"""Checks the committed test models with onnxruntime (run by scripts/test through the venv).

- the committed files match the sha256s in model.json and regenerating them gives the same bytes;
- successor: argmax(logits) == SUCCESSOR[input_id] at every position, for prefill, decode with a
  cache, left-padded batches and arbitrary masks; present.* == Concat(past, new);
  end-to-end text through tokenizer.json + chat template ("abc" -> "defgh...", "x" -> "yz{|}~" EOS);
- tiny-gpt: greedy continuations equal tiny-gpt/expected.json (written by --write-expected);
  logits with a KV cache (token by token, and in chunks) equal the logits of one
  uncached pass over the same sequence (tol 1e-4); a left-padded batch equals each row alone;
  the attention mask matters (masking a past token changes the logits).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = ROOT / "tests" / "data" / "models"
TOL = 1e-4

passed = 0
failed = 0


def check(cond: bool, what: str) -> None:
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")


class Model:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.meta = json.loads((d / "model.json").read_text())
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(d / "model.onnx"), so, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.L = self.meta["num_layers"]
        self.KV = self.meta["num_kv_heads"]
        self.D = self.meta["head_dim"]

    def empty_past(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, self.KV, 0, self.D), np.float32) for _ in range(2 * self.L)]

    def run(self, ids, mask, pos, past=None):
        ids = np.asarray(ids, np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.asarray(mask, np.int64), "position_ids": np.asarray(pos, np.int64)}
        past = past if past is not None else self.empty_past(ids.shape[0])
        for i in range(self.L):
            feeds[f"past_key_values.{i}.key"] = past[2 * i]
            feeds[f"past_key_values.{i}.value"] = past[2 * i + 1]
        out = self.sess.run(None, feeds)
        return out[0], out[1:]

    def full(self, ids):
        n = len(ids)
        return self.run([ids], [[1] * n], [list(range(n))])

    def prompt(self, messages) -> str:
        t = jinja2.Environment().from_string(self.meta["chat_template"])
        return t.render(messages=messages, add_generation_prompt=True)

    def greedy(self, text: str, max_new: int) -> tuple[str, list[int], str]:
        ids = self.tok.encode(text, add_special_tokens=False).ids
        logits, past = self.full(ids)
        n = len(ids)
        out: list[int] = []
        reason = "length"
        for _ in range(max_new):
            nxt = int(np.argmax(logits[0, -1]))
            if nxt in self.meta["eos_token_ids"]:
                reason = "stop"
                break
            out.append(nxt)
            logits, past = self.run([[nxt]], [[1] * (n + 1)], [[n]], past)
            n += 1
        return self.tok.decode(out, skip_special_tokens=True), out, reason


def check_files() -> None:
    for name in ("successor", "tiny-gpt"):
        d = MODELS / name
        meta = json.loads((d / "model.json").read_text())
        for f, key in (("model.onnx", "onnx_sha256"), ("tokenizer.json", "tokenizer_sha256")):
            data = (d / f).read_bytes()
            check(hashlib.sha256(data).hexdigest() == meta[key], f"{name}/{f} matches model.json {key}")
            check(len(data) < 1_000_000, f"{name}/{f} is under 1 MB ({len(data)} bytes)")
        readme = (MODELS / "README.md").read_text() if (MODELS / "README.md").exists() else ""
        check(meta["onnx_sha256"] in readme, f"{name} onnx sha256 listed in tests/data/models/README.md")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(HERE / "gen_test_models.py"), "--out", tmp], check=True, capture_output=True)
        for name in ("successor", "tiny-gpt"):
            for f in ("model.onnx", "tokenizer.json", "model.json"):
                same = (Path(tmp) / name / f).read_bytes() == (MODELS / name / f).read_bytes()
                check(same, f"regenerating {name}/{f} gives the committed bytes")


def successor_of(t: int, vocab: int) -> int:
    return 256 if t == ord("~") else (t + 1) % vocab


def check_successor() -> None:
    m = Model(MODELS / "successor")
    V = m.meta["vocab_size"]
    rng = np.random.default_rng(7)
    want = np.array([successor_of(t, V) for t in range(V)])

    # Every token, one prefill.
    ids = list(range(V))
    logits, present = m.full(ids)
    check(logits.shape == (1, V, V), f"successor logits shape {logits.shape}")
    check(bool((logits[0].argmax(-1) == want).all()), "successor: argmax == successor for every token (prefill)")

    # Decode with random pasts and random masks (including left padding and holes).
    ok_argmax = ok_concat = ok_shape = True
    for trial in range(20):
        b = int(rng.integers(1, 5))
        p = int(rng.integers(0, 12))
        s = int(rng.integers(1, 6))
        past = [rng.standard_normal((b, m.KV, p, m.D)).astype(np.float32) for _ in range(2 * m.L)]
        ids = rng.integers(0, V, (b, s))
        mask = rng.integers(0, 2, (b, p + s))
        mask[:, -1] = 1
        pos = rng.integers(0, 400, (b, s))
        logits, present = m.run(ids, mask, pos, past)
        ok_argmax &= bool((logits.argmax(-1) == want[ids]).all())
        ok_shape &= all(x.shape == (b, m.KV, p + s, m.D) for x in present)
        ok_concat &= all(np.array_equal(x[:, :, :p], y) for x, y in zip(present, past))
    check(ok_argmax, "successor: argmax == successor whatever past, mask and positions")
    check(ok_shape, "successor: present.* is [batch, kv_heads, past+seq, head_dim]")
    check(ok_concat, "successor: present.* starts with the past unchanged")

    # The new K/V are real: they depend on the token (so the cache plumbing is visible).
    _, pa = m.full([97])
    _, pb = m.full([98])
    check(not np.allclose(pa[0], pb[0]), "successor: present keys depend on the token")

    # End to end through the tokenizer and chat template.
    text = m.prompt([{"role": "user", "content": "abc"}])
    check(text == "abc", f"successor template renders the content as is ({text!r})")
    out, _, reason = m.greedy(text, 5)
    check(out == "defgh" and reason == "length", f"successor: 'abc' -> {out!r} ({reason})")
    out, toks, reason = m.greedy("x", 20)
    check(out == "yz{|}~" and reason == "stop", f"successor: 'x' -> {out!r} then EOS ({reason})")
    out, _, _ = m.greedy("Hello, w", 3)
    check(out == "xyz", f"successor: 'Hello, w' -> {out!r}")


def check_tiny_gpt() -> None:
    m = Model(MODELS / "tiny-gpt")
    V = m.meta["vocab_size"]
    rng = np.random.default_rng(11)
    ids = [int(x) for x in rng.integers(0, V, 24)]
    ref, ref_present = m.full(ids)
    check(float(ref.std()) > 1.0, f"tiny-gpt logits are spread (std {ref.std():.2f})")

    # Token by token with the cache.
    past = None
    step_logits = []
    for i, t in enumerate(ids):
        lg, past = m.run([[t]], [[1] * (i + 1)], [[i]], past)
        step_logits.append(lg[0, 0])
    diff = float(np.abs(np.stack(step_logits) - ref[0]).max())
    check(diff < TOL, f"tiny-gpt: cached token-by-token logits == uncached (max diff {diff:.2e})")
    pdiff = max(float(np.abs(a - b).max()) for a, b in zip(past, ref_present))
    check(pdiff < TOL, f"tiny-gpt: cached present == uncached present (max diff {pdiff:.2e})")

    # Chunked prefill: 10 tokens, then 14 with past.
    lg1, past = m.run([ids[:10]], [[1] * 10], [list(range(10))])
    lg2, _ = m.run([ids[10:]], [[1] * 24], [list(range(10, 24))], past)
    diff = float(np.abs(np.concatenate([lg1[0], lg2[0]]) - ref[0]).max())
    check(diff < TOL, f"tiny-gpt: chunked prefill == one pass (max diff {diff:.2e})")

    # Left-padded batch of ragged rows, then a batched decode step, vs each row alone.
    rows = [ids[:24], ids[5:12], ids[3:19]]
    n = max(len(r) for r in rows)
    pad_ids = [[0] * (n - len(r)) + r for r in rows]
    mask = [[0] * (n - len(r)) + [1] * len(r) for r in rows]
    pos = [[0] * (n - len(r)) + list(range(len(r))) for r in rows]
    lg, past = m.run(pad_ids, mask, pos)
    nxt = [int(rng.integers(0, V)) for _ in rows]
    lg_step, _ = m.run([[t] for t in nxt], [mk + [1] for mk in mask], [[len(r)] for r in rows], past)
    worst = 0.0
    for bi, r in enumerate(rows):
        alone, _ = m.full(r + [nxt[bi]])
        worst = max(worst, float(np.abs(lg[bi, n - len(r):] - alone[0, :-1]).max()))
        worst = max(worst, float(np.abs(lg_step[bi, 0] - alone[0, -1]).max()))
    check(worst < TOL, f"tiny-gpt: left-padded batch (prefill + decode) == rows alone (max diff {worst:.2e})")

    # The mask matters: hiding one past token changes the next logits.
    lg_a, past = m.run([ids[:8]], [[1] * 8], [list(range(8))])
    full_mask, _ = m.run([[ids[8]]], [[1] * 9], [[8]], past)
    holed, _ = m.run([[ids[8]]], [[1, 1, 1, 0, 1, 1, 1, 1, 1]], [[8]], past)
    check(float(np.abs(full_mask - holed).max()) > 1e-3, "tiny-gpt: attention_mask changes the logits")
    # Positions matter (RoPE): a gap in position_ids changes the logits...
    gapped, _ = m.run([ids[:8]], [[1] * 8], [[0, 1, 2, 3, 10, 11, 12, 13]])
    check(float(np.abs(gapped[0, 4:] - lg_a[0, 4:]).max()) > 1e-3, "tiny-gpt: position_ids change the logits")
    # ...but a uniform shift of all positions does not (RoPE is relative), up to float noise.
    shifted, _ = m.run([ids[:8]], [[1] * 8], [list(range(100, 108))])
    check(float(np.abs(shifted - lg_a).max()) < 1e-3, "tiny-gpt: RoPE is relative (uniform position shift)")

    # Tokenizer: merges apply, text round-trips, specials are single tokens.
    enc = m.tok.encode("<|im_start|>user\nsay the thing<|im_end|>", add_special_tokens=False)
    check(enc.ids[0] == m.meta["bos_token_id"] and enc.ids[-1] == m.meta["eos_token_ids"][0], "tiny-gpt: specials are single tokens")
    check("Ġthe" in enc.tokens, f"tiny-gpt: BPE merges apply ({enc.tokens})")
    s = "héllo wörld ✓"
    check(m.tok.decode(m.tok.encode(s).ids) == s, "tiny-gpt: byte-level text round-trips")
    out, toks, _ = m.greedy(m.prompt([{"role": "user", "content": "hi"}]), 8)
    check(len(toks) > 0, f"tiny-gpt greedy from chat prompt: {toks}")


EXPECTED_CASES = [
    {"text": "Hello"},
    {"text": "the quick brown fox"},
    {"messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]},
]
EXPECTED_MAX_TOKENS = 24


def tiny_gpt_expected() -> dict:
    """Greedy continuations of tiny-gpt (uncached reference per step is not needed: the cache is checked above)."""
    m = Model(MODELS / "tiny-gpt")
    cases = []
    for case in EXPECTED_CASES:
        prompt = case["text"] if "text" in case else m.prompt(case["messages"])
        ids = m.tok.encode(prompt, add_special_tokens=False).ids
        logits, past = m.full(ids)
        n, out, gap = len(ids), [], float("inf")
        for _ in range(EXPECTED_MAX_TOKENS):
            top2 = np.sort(logits[0, -1])[-2:]
            gap = min(gap, float(top2[1] - top2[0]))
            nxt = int(np.argmax(logits[0, -1]))
            out.append(nxt)
            logits, past = m.run([[nxt]], [[1] * (n + 1)], [[n]], past)
            n += 1
        cases.append({**case, "prompt": prompt, "prompt_ids": ids, "greedy_ids": out,
                      "greedy_text": m.tok.decode(out), "min_top2_gap": round(gap, 4)})
    return {"max_tokens": EXPECTED_MAX_TOKENS, "note": "greedy, prompt encoded without added special tokens; "
            "min_top2_gap is the smallest logit margin of the greedy choice (batching noise is ~5e-6)", "cases": cases}


def check_expected() -> None:
    path = MODELS / "tiny-gpt" / "expected.json"
    want = json.loads(path.read_text())
    got = tiny_gpt_expected()
    for w_case, g_case in zip(want["cases"], got["cases"]):
        ok = w_case["greedy_ids"] == g_case["greedy_ids"] and w_case["prompt_ids"] == g_case["prompt_ids"]
        check(ok, f"tiny-gpt greedy matches expected.json: {g_case['prompt'][:24]!r} -> {g_case['greedy_text']!r}")
        check(all(32 <= ord(c) < 127 for c in g_case["greedy_text"]), "tiny-gpt greedy text is printable ASCII")
    check(len(want["cases"]) == len(got["cases"]), "expected.json has every case")


def main() -> None:
    if sys.argv[1:] == ["--write-expected"]:
        path = MODELS / "tiny-gpt" / "expected.json"
        exp = tiny_gpt_expected()
        cases = ",\n    ".join(json.dumps(c, ensure_ascii=False) for c in exp["cases"])
        path.write_text(
            f'{{\n  "max_tokens": {exp["max_tokens"]},\n  "note": {json.dumps(exp["note"])},\n  "cases": [\n    {cases}\n  ]\n}}\n'
        )
        print(f"wrote {path}")
        return
    check_files()
    check_successor()
    check_tiny_gpt()
    check_expected()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
