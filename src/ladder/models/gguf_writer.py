"""A small HF-Llama to GGUF converter (what llama.cpp's convert_hf_to_gguf.py does for Llama), via `gguf`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# HF parameter name (per layer) -> GGUF tensor name, as llama.cpp's Llama loader expects them.
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF stores rotary halves split; GGUF/llama.cpp interleaves them (convert_hf_to_gguf's permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_tokens(path: Path) -> tuple[dict, list[str]]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
    return fields, fields.get("tokenizer.ggml.tokens") or []


def _hf_tokenizer_fields(tok) -> dict:
    """Tokenizer metadata built from a byte-level BPE HF tokenizer (used when no GGUF carries it)."""
    data = json.loads(tok.backend_tokenizer.to_str())
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    special = {t.content for t in tok.added_tokens_decoder.values() if t.special}
    tokens = tok.convert_ids_to_tokens(list(range(len(tok))))
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3 if t in special else 1 for t in tokens],
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": tok.bos_token_id,
        "tokenizer.ggml.eos_token_id": tok.eos_token_id,
        "tokenizer.ggml.padding_token_id": tok.pad_token_id,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": tok.chat_template,
    }


def tokenizer_fields(tok, candidates: list[Path]) -> dict:
    """The base GGUF's own tokenizer metadata where its vocabulary is the tokenizer's, else built from HF."""
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    for path in candidates:
        if path and Path(path).exists():
            fields, tokens = _gguf_tokens(Path(path))
            if list(tokens) == vocab:
                return fields
    return _hf_tokenizer_fields(tok)


def _add_tokenizer(w, f: dict) -> None:
    w.add_tokenizer_model(f["tokenizer.ggml.model"])
    if f.get("tokenizer.ggml.pre"):
        w.add_tokenizer_pre(f["tokenizer.ggml.pre"])
    w.add_token_list(list(f["tokenizer.ggml.tokens"]))
    w.add_token_types(list(f["tokenizer.ggml.token_type"]))
    if f.get("tokenizer.ggml.merges"):
        w.add_token_merges(list(f["tokenizer.ggml.merges"]))
    for key, add in (
        ("bos_token_id", w.add_bos_token_id),
        ("eos_token_id", w.add_eos_token_id),
        ("unknown_token_id", w.add_unk_token_id),
        ("padding_token_id", w.add_pad_token_id),
    ):
        if f.get(f"tokenizer.ggml.{key}") is not None:
            add(int(f[f"tokenizer.ggml.{key}"]))
    for key, add in (("add_bos_token", w.add_add_bos_token), ("add_space_prefix", w.add_add_space_prefix)):
        if f.get(f"tokenizer.ggml.{key}") is not None:
            add(bool(f[f"tokenizer.ggml.{key}"]))
    if f.get("tokenizer.chat_template"):
        w.add_chat_template(f["tokenizer.chat_template"])


def write_llama_gguf(
    model, tok, path: Path, *, quant: str = "q8_0", tokenizer_gguf: Path | None = None, name: str = "model"
) -> Path:
    """Write `model` (a merged LlamaForCausalLM) to `path` atomically: temp file, then rename."""
    import gguf

    from ladder.models.packaged import smollm2_gguf

    cfg = model.config
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)
    qtype = {
        "f16": gguf.GGMLQuantizationType.F16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "f32": gguf.GGMLQuantizationType.F32,
    }[quant]
    ftype = {
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "f32": gguf.LlamaFileType.ALL_F32,
    }[quant]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(float(rope))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(w, tokenizer_fields(tok, [tokenizer_gguf, smollm2_gguf()]))

    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}

    def put(gname: str, arr: np.ndarray) -> None:
        if arr.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(gname, arr.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(gname, arr.astype(np.float16))
        else:
            w.add_tensor(gname, gguf.quants.quantize(arr.astype(np.float32), qtype), raw_dtype=qtype)

    put("token_embd.weight", state["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        for hf_name, g_name in LAYER_TENSORS.items():
            arr = state[f"model.layers.{i}.{hf_name}"]
            if hf_name.startswith("self_attn.q_proj"):
                arr = permute_qk(arr, n_head)
            elif hf_name.startswith("self_attn.k_proj"):
                arr = permute_qk(arr, n_kv)
            put(f"blk.{i}.{g_name}", arr)
    put("output_norm.weight", state["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        put("output.weight", state["lm_head.weight"])
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
