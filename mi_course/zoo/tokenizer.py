"""The world's word-level tokenizer, saved as Hugging Face files inside the package.

Every token is a whole word or a punctuation mark (``mi_course.zoo.world.VOCAB``).
Encoding prepends ``<bos>``; decoding puts one space between words and none
before punctuation, so ``decode(encode(text))`` gives back ``text`` for any
text the world generates.

    >>> tok = load_tokenizer()                 # offline: reads mi_course/zoo/data/tokenizer/
    >>> tok("Anna Smith plays tennis.").input_ids   # [bos, Anna, Smith, plays, tennis, .]

``save_tokenizer`` rebuilds the files from the word list; a test checks that
the shipped files match it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from .world import BOS_ID, SPECIAL_TOKENS, TOKEN_ID, VOCAB

TOKENIZER_DIR = Path(__file__).resolve().parent / "data" / "tokenizer"


def build_tokenizer() -> Tokenizer:
    """A ``tokenizers.Tokenizer`` over ``VOCAB``: split on spaces and punctuation, add BOS."""
    tok = Tokenizer(models.WordLevel(vocab=dict(TOKEN_ID), unk_token="<unk>"))
    # Words are runs of letters; each punctuation mark is its own token.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(r"[.,?!]"), behavior="isolated"),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", BOS_ID)])
    # The WordPiece decoder joins with spaces; cleanup removes the space before . , ? !
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def save_tokenizer(directory: str | Path = TOKENIZER_DIR) -> Path:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` (loadable with ``AutoTokenizer``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
        "add_bos_token": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1024,
        "padding_side": "right",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return directory


def load_tokenizer(directory: str | Path = TOKENIZER_DIR):
    """The shipped tokenizer as a ``transformers`` fast tokenizer (no network)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def hub_like_tokenizer(vocab_size: int | None = None, extra_words: Sequence[str] = ()):
    """A stand-in for a hub model's tokenizer, for offline tests and the bench: the world's words numbered in
    reverse (so that a model with it does not "speak the world"), then ``extra_words`` that the world lacks (the
    famous athletes' names, say: a hub tokenizer has no unknown words), then ``<filler{i}>`` tokens up to
    ``vocab_size`` (GPT-2's 50,257, say). Splits and decodes as the world's tokenizer; a ``transformers`` fast
    tokenizer."""
    from transformers import PreTrainedTokenizerFast

    inner = build_tokenizer()
    words = {w: len(VOCAB) - 1 - i for i, w in enumerate(VOCAB)}
    for word in extra_words:
        words.setdefault(word, len(words))
    words.update({f"<filler{i}>": i for i in range(len(words), vocab_size or len(words))})
    inner.model = models.WordLevel(vocab=words, unk_token="<unk>")
    inner.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", len(VOCAB) - 1 - BOS_ID)])
    return PreTrainedTokenizerFast(tokenizer_object=inner, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


__all__ = ["TOKENIZER_DIR", "VOCAB", "build_tokenizer", "hub_like_tokenizer", "load_tokenizer", "save_tokenizer"]
