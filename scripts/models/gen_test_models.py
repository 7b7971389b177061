#!/usr/bin/env python3
"""Generates the committed test models under tests/data/models/ (deterministic; numpy + onnx + tokenizers).

  successor/  greedy next token of t is SUCCESSOR[t] = t + 1 (mod vocab), except '~' (126) -> EOS (256),
              whatever the past or attention mask; the two layers still run real attention and
              present.* are real Concat(past, new) tensors.
  tiny-gpt/   random-weight 2-layer Llama-style decoder (RMSNorm, RoPE from position_ids, GQA, SwiGLU,
              untied lm_head) honouring attention_mask and past.

Both: 4 query heads / 2 KV heads, head_dim 8, hidden 32, byte-level BPE tokenizer.json (token id of
byte b is b), specials <|endoftext|>, <|im_start|>, <|im_end|>.

Usage: gen_test_models.py [--out DIR]   (default: tests/data/models next to this repo's root)
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_onnx import LayerWeights, LlamaConfig, Weights, build_model, bytes_to_unicode, save_model, write_model_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CONTEXT_LENGTH = 512

# Merges for tiny-gpt's tokenizer (byte-level alphabet; "Ġ" is a space). Each result is a new token.
TINY_MERGES = [
    ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("a", "n"), ("Ġ", "a"), ("o", "n"),
    ("r", "e"), ("Ġ", "s"), ("e", "d"), ("i", "s"), ("Ġ", "w"), ("o", "u"), ("Ġ", "c"), ("in", "g"),
    ("Ġ", "o"), ("a", "t"), ("e", "n"), ("Ġ", "f"), ("Ġ", "i"), ("l", "l"), ("Ġ", "b"), ("o", "r"),
]

SUCCESSOR_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def byte_level_tokenizer(merges: list[tuple[str, str]]) -> tuple[str, int]:
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for a, b in merges:
        assert a in vocab and b in vocab, (a, b)
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=list(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    size = tok.get_vocab_size(with_added_tokens=True)
    assert size == len(vocab) + len(SPECIALS)
    return tok.to_str(pretty=True) + "\n", size


def random_weights(cfg: LlamaConfig, seed: int) -> Weights:
    rng = np.random.default_rng(seed)

    def mat(n_in: int, n_out: int) -> np.ndarray:
        return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    H, KV, D, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.hidden
    embed = rng.standard_normal((cfg.vocab_size, d)).astype(np.float32)
    layers = []
    for _ in range(cfg.num_layers):
        layers.append(
            LayerWeights(
                attn_norm=norm(d),
                wq=mat(d, H * D) * 2.0,  # sharper attention than uniform
                wk=mat(d, KV * D) * 2.0,
                wv=mat(d, KV * D),
                wo=mat(H * D, d),
                ffn_norm=norm(d),
                w_gate=mat(d, cfg.intermediate),
                w_up=mat(d, cfg.intermediate),
                w_down=mat(cfg.intermediate, d),
            )
        )
    return Weights(embed=embed, layers=layers, out_norm=norm(d))


def successor_map(vocab: int) -> np.ndarray:
    m = (np.arange(vocab, dtype=np.int64) + 1) % vocab
    m[ord("~")] = 256  # <|endoftext|>
    return m


def tiny_cfg(vocab: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab, hidden=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
        intermediate=64, rms_eps=1e-5, rope_theta=10000.0,
    )


def write_dir(out: Path, name: str, cfg: LlamaConfig, w: Weights, tokenizer_json: str, extra: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    onnx_sha = save_model(build_model(cfg, w, name), out / "model.onnx")
    (out / "tokenizer.json").write_text(tokenizer_json)
    tok_sha = hashlib.sha256(tokenizer_json.encode()).hexdigest()
    meta = {
        "name": name,
        "num_layers": cfg.num_layers,
        "num_kv_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "context_length": CONTEXT_LENGTH,
        **extra,
        "onnx_sha256": onnx_sha,
        "tokenizer_sha256": tok_sha,
    }
    write_model_json(out / "model.json", meta)
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "models")
    args = ap.parse_args()

    # successor: byte vocabulary only (no merges) so each byte of the text is one token.
    tok_json, vocab = byte_level_tokenizer([])
    assert vocab == 259
    cfg = tiny_cfg(vocab)
    w = random_weights(cfg, seed=1)
    w.successor_map = successor_map(vocab)
    meta = write_dir(
        args.out / "successor", "successor", cfg, w, tok_json,
        {"bos_token_id": 257, "eos_token_ids": [256], "chat_template": SUCCESSOR_TEMPLATE},
    )
    print(f"successor  onnx {meta['onnx_sha256']}  tokenizer {meta['tokenizer_sha256']}")

    tok_json, vocab = byte_level_tokenizer(TINY_MERGES)
    cfg = tiny_cfg(vocab)
    w = random_weights(cfg, seed=2)
    # Untied head: with a tied one a random model mostly repeats its last token. Rows of tokens that
    # are not printable ASCII (control bytes, bytes >= 127, specials) are zero: their logit is 0 while
    # the best printable one is far above, so greedy text is printable ASCII (and never EOS).
    lm_head = np.random.default_rng(3).standard_normal((vocab, cfg.hidden)).astype(np.float32)
    printable = np.zeros(vocab, dtype=bool)
    printable[32:127] = True
    printable[256 : 256 + len(TINY_MERGES)] = True
    lm_head[~printable] = 0.0
    w.lm_head = lm_head
    first_special = vocab - len(SPECIALS)
    meta = write_dir(
        args.out / "tiny-gpt", "tiny-gpt", cfg, w, tok_json,
        {"bos_token_id": first_special + 1, "eos_token_ids": [first_special + 2, first_special],
         "chat_template": CHATML_TEMPLATE},
    )
    print(f"tiny-gpt   onnx {meta['onnx_sha256']}  tokenizer {meta['tokenizer_sha256']}")


if __name__ == "__main__":
    main()
