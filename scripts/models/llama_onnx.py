"""Builds Llama-architecture decoders in the Optimum "decoder with past" ONNX interface.

Shared by gen_test_models.py (tiny test models) and convert_gguf.py (SmolLM2). Only plain ONNX
operators (opset 17) are used, so any onnxruntime build runs the result.

Interface (batch, seq, past and total = past + seq are symbolic):
  inputs   input_ids int64 [batch, seq], attention_mask int64 [batch, total],
           position_ids int64 [batch, seq],
           past_key_values.{i}.key / .value float32 [batch, num_kv_heads, past, head_dim]
  outputs  logits float32 [batch, seq, vocab],
           present.{i}.key / .value float32 [batch, num_kv_heads, total, head_dim]
           (present = Concat(past, new) along axis 2; past may be 0 long)

Semantics: query j of the chunk sits at cache index past + j and may attend cache index k iff
k <= past + j and attention_mask[b, k] == 1 (masked scores get -1e9, so a fully masked row stays
finite). RoPE angles come from position_ids (HF "rotate half" form, theta configurable).
Grouped-query attention: query head h uses KV head h // (num_heads / num_kv_heads), computed by
reshaping the queries instead of copying the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
MASK_VALUE = -1.0e9


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate: int
    rms_eps: float
    rope_theta: float


@dataclass
class LayerWeights:
    """Weights in x @ W layout ([in, out]); q/k rows in HF (rotate-half) order."""

    attn_norm: np.ndarray  # [hidden]
    wq: np.ndarray  # [hidden, heads*head_dim]
    wk: np.ndarray  # [hidden, kv*head_dim]
    wv: np.ndarray  # [hidden, kv*head_dim]
    wo: np.ndarray  # [heads*head_dim, hidden]
    ffn_norm: np.ndarray  # [hidden]
    w_gate: np.ndarray  # [hidden, intermediate]
    w_up: np.ndarray  # [hidden, intermediate]
    w_down: np.ndarray  # [intermediate, hidden]


@dataclass
class Weights:
    embed: np.ndarray  # [vocab, hidden]; also the lm_head when tied (lm_head None)
    layers: list[LayerWeights]
    out_norm: np.ndarray  # [hidden]
    # Successor head: logits = logit_scale * one_hot(successor_map[input_ids]); the stack still
    # runs and fills present.* but never reaches the logits.
    lm_head: np.ndarray | None = None  # [vocab, hidden] when untied
    successor_map: np.ndarray | None = None
    logit_scale: float = 10.0
    extra: dict = field(default_factory=dict)


class _G:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, hint: str, arr: np.ndarray) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def weight(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs):
        outs = [self.name(hint or op_type) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs


def _rms_norm(g: _G, x: str, w: str, eps: str) -> str:
    sq = g.op("Mul", [x, x])
    ms = g.op("ReduceMean", [sq], axes=[-1], keepdims=1)
    rs = g.op("Sqrt", [g.op("Add", [ms, eps])])
    return g.op("Mul", [g.op("Div", [x, rs]), w])


def _rope(g: _G, x: str, cos: str, sin: str) -> str:
    x1, x2 = g.op("Split", [x], n_out=2, axis=-1)
    rot = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rot, sin])])


def build_model(cfg: LlamaConfig, w: Weights, name: str) -> onnx.ModelProto:
    H, KV, D = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    assert H % KV == 0
    g = _G()
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", cfg.vocab_size])]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", KV, "past", D]
                )
            )
            outputs.append(
                helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", KV, "total", D])
            )

    eps = g.const("eps", np.array(cfg.rms_eps, dtype=np.float32))

    # Embedding.
    x = g.op("Gather", [g.weight("embed_tokens", w.embed), "input_ids"], axis=0)

    # RoPE tables from position_ids: angle = pos * inv_freq, emb = [angle, angle].
    inv_freq = (1.0 / (cfg.rope_theta ** (np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / D))).astype(
        np.float32
    )
    pos = g.op("Unsqueeze", [g.op("Cast", ["position_ids"], to=TensorProto.FLOAT), g.const("ax", i64(-1))])
    ang = g.op("Mul", [pos, g.const("inv_freq", inv_freq)])
    emb = g.op("Concat", [ang, ang], axis=-1)
    one = g.const("ax", i64(1))
    cos = g.op("Unsqueeze", [g.op("Cos", [emb]), one], hint="rope_cos")  # [b,1,s,D]
    sin = g.op("Unsqueeze", [g.op("Sin", [emb]), one], hint="rope_sin")

    # Additive mask [b,1,s,total]: causal relative to past = total - seq, and attention_mask.
    total = g.op("Gather", [g.op("Shape", ["attention_mask"]), g.const("idx", np.array(1, dtype=np.int64))], axis=0)
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("idx", np.array(1, dtype=np.int64))], axis=0)
    past = g.op("Sub", [total, seq])
    step = g.const("one", np.array(1, dtype=np.int64))
    kidx = g.op("Range", [g.const("zero", np.array(0, dtype=np.int64)), total, step])
    qidx = g.op("Range", [past, total, step])
    causal = g.op(
        "LessOrEqual",
        [g.op("Unsqueeze", [kidx, g.const("ax", i64(0))]), g.op("Unsqueeze", [qidx, g.const("ax", i64(1))])],
    )  # [s, total]
    am = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), g.const("ax", i64(1, 2))])
    allowed = g.op("And", [causal, am])  # [b,1,s,total]
    bias = g.op(
        "Where",
        [allowed, g.const("zero_f", np.array(0.0, dtype=np.float32)), g.const("neg", np.array(MASK_VALUE, np.float32))],
        hint="attn_bias",
    )

    scale = g.const("scale", np.array(1.0 / np.sqrt(D), dtype=np.float32))
    shp_q = g.const("shape", i64(0, 0, H, D))
    shp_kv = g.const("shape", i64(0, 0, KV, D))
    shp_grouped = g.const("shape", i64(0, KV, -1, 0))
    shp_heads = g.const("shape", i64(0, H, -1, 0))
    shp_merge = g.const("shape", i64(0, 0, H * D))

    for li, lw in enumerate(w.layers):
        p = f"layers.{li}."
        h = _rms_norm(g, x, g.weight(p + "input_layernorm", lw.attn_norm), eps)
        q = g.op("Transpose", [g.op("Reshape", [g.op("MatMul", [h, g.weight(p + "q_proj", lw.wq)]), shp_q])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [g.op("MatMul", [h, g.weight(p + "k_proj", lw.wk)]), shp_kv])], perm=[0, 2, 1, 3])
        v = g.op("Transpose", [g.op("Reshape", [g.op("MatMul", [h, g.weight(p + "v_proj", lw.wv)]), shp_kv])], perm=[0, 2, 1, 3])
        q = _rope(g, q, cos, sin)
        k = _rope(g, k, cos, sin)
        pk = f"present.{li}.key"
        pv = f"present.{li}.value"
        g.nodes.append(helper.make_node("Concat", [f"past_key_values.{li}.key", k], [pk], name=g.name("n_pk"), axis=2))
        g.nodes.append(helper.make_node("Concat", [f"past_key_values.{li}.value", v], [pv], name=g.name("n_pv"), axis=2))
        qg = g.op("Reshape", [q, shp_grouped])  # [b, KV, G*s, D]
        scores = g.op("Mul", [g.op("MatMul", [qg, g.op("Transpose", [pk], perm=[0, 1, 3, 2])]), scale])
        scores = g.op("Add", [g.op("Reshape", [scores, shp_heads]), bias])  # [b, H, s, total]
        probs = g.op("Reshape", [g.op("Softmax", [scores], axis=-1), shp_grouped])
        ctx = g.op("Reshape", [g.op("MatMul", [probs, pv]), shp_heads])  # [b, H, s, D]
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), shp_merge])
        x = g.op("Add", [x, g.op("MatMul", [ctx, g.weight(p + "o_proj", lw.wo)])])
        h = _rms_norm(g, x, g.weight(p + "post_attention_layernorm", lw.ffn_norm), eps)
        gate = g.op("MatMul", [h, g.weight(p + "gate_proj", lw.w_gate)])
        up = g.op("MatMul", [h, g.weight(p + "up_proj", lw.w_up)])
        act = g.op("Mul", [gate, g.op("Sigmoid", [gate])])
        x = g.op("Add", [x, g.op("MatMul", [g.op("Mul", [act, up]), g.weight(p + "down_proj", lw.w_down)])])

    if w.successor_map is None:
        h = _rms_norm(g, x, g.weight("norm", w.out_norm), eps)
        flat = g.op("Reshape", [h, g.const("shape", i64(-1, cfg.hidden))])
        # lm_head as Gemm with transB: a tied head reads the embedding matrix in place (no copy).
        head = "embed_tokens" if w.lm_head is None else g.weight("lm_head", w.lm_head)
        lg = g.op("Gemm", [flat, head], transB=1)
        out_shape = g.op("Concat", [g.op("Shape", ["input_ids"]), g.const("vocab", i64(cfg.vocab_size))], axis=0)
        g.nodes.append(helper.make_node("Reshape", [lg, out_shape], ["logits"], name=g.name("n_logits")))
    else:
        succ = g.op("Gather", [g.const("successor_map", w.successor_map.astype(np.int64)), "input_ids"], axis=0)
        g.nodes.append(
            helper.make_node(
                "OneHot",
                [succ, g.const("depth", np.array(cfg.vocab_size, dtype=np.int64)),
                 g.const("onehot_values", np.array([0.0, w.logit_scale], dtype=np.float32))],
                ["logits"],
                name=g.name("n_logits"),
                axis=-1,
            )
        )

    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="cocoon-scripts-models",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    return model


def save_model(model: onnx.ModelProto, path: Path) -> str:
    """Writes the model as one file (deterministic bytes); returns its sha256."""
    data = model.SerializeToString(deterministic=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_model_json(path: Path, meta: dict) -> None:
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable unicode character map (byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
