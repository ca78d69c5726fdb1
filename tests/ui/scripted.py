"""A tiny Llama whose greedy answer is a chosen text: a real model, wired as a bigram table.

Attention and MLP outputs are zeroed, so the last hidden state is just the last token's embedding;
each token of the script gets its own direction and lm_head maps it to the next token of the script.
This gives the browser tests a real model (loaded and run by the torch backend) whose output is
known: a cited answer, or an answer full of markup that must stay text.
"""

from __future__ import annotations

from pathlib import Path


def build_scripted_model(tokenizer_dir: Path, out: Path, text: str) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok.encode(text, add_special_tokens=False)
    if len(set(ids)) != len(ids):
        raise ValueError(f"the script {text!r} repeats a token; a bigram table cannot say it")
    hidden = 64
    if len(ids) + 2 > hidden:
        raise ValueError("script too long for the hidden size")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        head = model.lm_head.weight
        emb.zero_()
        head.zero_()
        emb[:, 0] = 1.0  # every token not in the script: "start of the answer"
        chain = [*ids, tok.eos_token_id]
        head[chain[0], 0] = 10.0
        for i, t in enumerate(ids):
            emb[t].zero_()
            emb[t, i + 1] = 1.0
            head[chain[i + 1], i + 1] = 10.0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
