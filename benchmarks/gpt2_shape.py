"""A GPT-2-small-shaped model built offline, for the bench (issue 25, point 3).

:func:`make_gpt2` saves a randomly initialised GPT-2 in Hugging Face format to a folder, with a local
tokenizer of GPT-2's size: the world's words (numbered in reverse, so that the model does not "speak the
world", like a hub model), the famous athletes' names (chapter 06's prompts on a hub model) and filler tokens up
to ``vocab_size``. ``mi_course.models.load(folder)`` then
loads it through TransformerBridge as it would a hub model. The default shape is GPT-2 small's: 12 layers,
12 heads, d_model 768, d_mlp 3072, context 1024, 50,257 words (124M parameters, about 500 MB on disk).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

GPT2_VOCAB_SIZE = 50_257


@dataclass(frozen=True)
class Shape:
    """A GPT-2's sizes (Hugging Face's names in brackets): layers [n_layer], heads [n_head], d_model [n_embd],
    d_mlp [n_inner], context [n_positions] and vocabulary size."""

    n_layers: int = 12
    n_heads: int = 12
    d_model: int = 768
    d_mlp: int = 3072
    n_ctx: int = 1024
    d_vocab: int = GPT2_VOCAB_SIZE


GPT2_SMALL = Shape()


def make_gpt2(folder: Path, shape: Shape = GPT2_SMALL, seed: int = 0) -> dict:
    """Save a random GPT-2 of ``shape`` (weights drawn by Hugging Face's initialiser from ``seed``; the global
    random state is left as it was) and its tokenizer to ``folder``, in Hugging Face format. -> the saved
    config's sizes, under :class:`Shape`'s names"""
    from transformers import GPT2Config, GPT2LMHeadModel

    from mi_course.residual_stream.prompts import athlete_words
    from mi_course.zoo.tokenizer import hub_like_tokenizer

    tok = hub_like_tokenizer(shape.d_vocab, athlete_words())      # the world's words renumbered, the athletes, fillers
    config = GPT2Config(vocab_size=len(tok), n_positions=shape.n_ctx, n_embd=shape.d_model, n_layer=shape.n_layers,
                        n_head=shape.n_heads, n_inner=shape.d_mlp, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = GPT2LMHeadModel(config).eval()
    Path(folder).mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return saved_shape(folder)


def saved_shape(folder: Path) -> dict:
    """The sizes of the GPT-2 saved in ``folder`` (its config.json and tokenizer), under :class:`Shape`'s names."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    return asdict(Shape(n_layers=config.n_layer, n_heads=config.n_head, d_model=config.n_embd,
                        d_mlp=config.n_inner or 4 * config.n_embd, n_ctx=config.n_positions,
                        d_vocab=len(AutoTokenizer.from_pretrained(folder, local_files_only=True))))
