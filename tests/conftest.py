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


def make_tiny_gpt2(folder: Path, n_positions: int = 64, foreign_vocabulary: bool = False, vocab_size: int | None = None,
                   n_layers: int = 2, d_model: int = 32, n_heads: int = 2):
    """Save a randomly initialised GPT-2 (2 layers, d_model 32, 2 heads unless told; d_mlp 4 x d_model) in
    Hugging Face format to ``folder``; returns the Hugging Face model. Its tokenizer is the world's, or with
    ``foreign_vocabulary`` a hub-like one (``hub_like_tokenizer``): the same words numbered in reverse order, so
    that the model does not "speak the world", and the famous athletes' names, which a hub tokenizer knows.
    ``vocab_size`` (with ``foreign_vocabulary``) pads the vocabulary with filler tokens to a hub model's size:
    50,257 words is GPT-2's, whose vocab x vocab matrices are 10 GB."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from mi_course.residual_stream.prompts import athlete_words
    from mi_course.zoo.tokenizer import hub_like_tokenizer, load_tokenizer
    from mi_course.zoo.world import BOS_ID, VOCAB

    tok = load_tokenizer()
    bos = BOS_ID
    if foreign_vocabulary:
        tok = hub_like_tokenizer(vocab_size, athlete_words())
        bos = len(VOCAB) - 1 - BOS_ID
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=d_model, n_layer=n_layers,
                                    n_head=n_heads,
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


# The any-model notebook tests' GPT-2 (issue 25): GPT-2's vocabulary of 50,257 words, 4 layers; built once a session.
# d_model 128, not 256: at 256, chapters 01, 02 and 04 took 103 s, 54 s and 259 s on one CPU thread, against 63 s,
# 30 s and 89 s at the old 2 layers x d_model 32 (+234 s before chapters 05 and 06 and the puzzles).
HUB_SHAPE = dict(n_layers=4, d_model=128, n_heads=4, n_positions=128, vocab_size=50_257)


@pytest.fixture(scope="session")
def hub_shaped_gpt2(tmp_path_factory) -> Path:
    """The folder of a random GPT-2 with a hub model's vocabulary (:data:`HUB_SHAPE`: the world's words in
    another numbering, then filler tokens), loaded by the notebooks as ``model=<folder>`` like a hub model."""
    folder = tmp_path_factory.mktemp("hub-shaped-gpt2")
    make_tiny_gpt2(folder, foreign_vocabulary=True, **HUB_SHAPE)
    return folder
