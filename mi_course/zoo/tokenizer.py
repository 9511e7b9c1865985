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


__all__ = ["TOKENIZER_DIR", "VOCAB", "build_tokenizer", "load_tokenizer", "save_tokenizer"]
