"""Test-wide settings: progress goes to a throw-away file, never to the learner's real one,
and torch uses one thread, as the chapters do: the course's models are tiny, so a
second thread brings no speed-up, and results do not depend on the core count.
"""

import os
import tempfile
from pathlib import Path

import pytest
import torch

_PROGRESS_DIR = tempfile.mkdtemp(prefix="mi-course-test-progress-")
os.environ["MI_COURSE_PROGRESS"] = os.path.join(_PROGRESS_DIR, "progress.json")
os.environ["MI_COURSE_CLAIMS"] = "strict"    # a notebook claim that does not hold raises (mi_course.claims)
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def pytest_report_header(config) -> str:
    """Which CPU kernels torch uses (ATEN_CPU_CAPABILITY can choose others): notebook outputs depend on them."""
    chosen = os.environ.get("ATEN_CPU_CAPABILITY")
    return (f"torch {torch.__version__}, CPU kernels: {torch.backends.cpu.get_cpu_capability()}"
            + (f" (ATEN_CPU_CAPABILITY={chosen})" if chosen else " (this machine's own)"))


@pytest.fixture
def repo() -> Path:
    return REPO


def make_tiny_gpt2(folder: Path, n_positions: int = 64, foreign_vocabulary: bool = False, vocab_size: int | None = None):
    """Save a randomly initialised 2-layer GPT-2 in Hugging Face format to ``folder``; returns the
    Hugging Face model. Its tokenizer is the world's, or with ``foreign_vocabulary`` the same words
    numbered in reverse order, so that the model does not "speak the world" (like a hub model).
    ``vocab_size`` (with ``foreign_vocabulary``) pads the vocabulary with filler tokens to a hub model's
    size: 50,257 words is GPT-2's, whose vocab x vocab matrices are 10 GB."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from mi_course.zoo.tokenizer import build_tokenizer, load_tokenizer
    from mi_course.zoo.world import BOS_ID, VOCAB

    tok = load_tokenizer()
    bos = BOS_ID
    if foreign_vocabulary:
        from tokenizers import models as tk_models

        inner = build_tokenizer()
        words = {w: len(VOCAB) - 1 - i for i, w in enumerate(VOCAB)}
        words.update({f"<filler{i}>": i for i in range(len(VOCAB), vocab_size or len(VOCAB))})
        inner.model = tk_models.WordLevel(vocab=words, unk_token="<unk>")
        bos = len(VOCAB) - 1 - BOS_ID
        from tokenizers import processors

        inner.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
        tok = PreTrainedTokenizerFast(tokenizer_object=inner, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                      unk_token="<unk>")
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=bos, eos_token_id=int(tok.convert_tokens_to_ids("<eos>")))).eval()
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return hf


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """A tiny random GPT-2 (see :func:`make_tiny_gpt2`). Stands in for the hub models offline: chapter code
    is tested on it so that nothing assumes the zoo's sizes. Returns (folder, the Hugging Face model)."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    return folder, make_tiny_gpt2(folder)
