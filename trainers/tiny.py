"""A tiny causal LM + word-level tokenizer built locally from a corpus (no download).

For tests, smoke runs and CPU benchmarks: a LlamaConfig with a handful of hidden units and a vocabulary trained
on the fly with ``tokenizers``. The training code paths are exactly those used for a real base model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 512):  # noqa: ANN201 - PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(list(corpus), trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str], *, hidden: int = 32, layers: int = 2,
                     heads: int = 4, vocab_size: int = 512, max_positions: int = 256, seed: int = 0,
                     init_range: float = 0.2) -> Path:
    """Write a randomly initialised LlamaForCausalLM and its tokenizer to ``out_dir``; returns the path.

    ``init_range`` is larger than Llama's 0.02: with a 32-wide hidden state behind an RMSNorm, a 0.02 output head
    caps every logit near zero, so no adapter could move the output distribution far from uniform.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.hf_common import quiet_hf

    quiet_hf()
    out = Path(out_dir)
    tok = build_tokenizer(corpus, vocab_size)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                      max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
                      initializer_range=init_range)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
