"""The shipped word-level tokenizer: offline loading, BOS, round trips."""

from __future__ import annotations

import json

import pytest

from mi_course.zoo import world as W
from mi_course.zoo.tokenizer import TOKENIZER_DIR, build_tokenizer, load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_loads_offline_with_autotokenizer(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    assert len(t) == len(W.VOCAB)
    assert t.bos_token == "<bos>" and t.bos_token_id == W.BOS_ID


def test_shipped_files_match_the_vocabulary():
    """The files in the package are exactly what ``build_tokenizer`` makes from ``world.VOCAB``."""
    shipped = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text())
    built = json.loads(build_tokenizer().to_str())
    assert shipped["model"]["vocab"] == built["model"]["vocab"] == {w: i for i, w in enumerate(W.VOCAB)}
    assert shipped == built


def test_bos_prepended_and_every_word_one_token(tok):
    ids = tok("Anna Smith plays the sport of tennis.").input_ids
    assert tok.convert_ids_to_tokens(ids) == ["<bos>", "Anna", "Smith", "plays", "the", "sport", "of", "tennis", "."]
    for word in W.VOCAB[len(W.SPECIAL_TOKENS):]:
        assert tok(word).input_ids == [W.BOS_ID, W.TOKEN_ID[word]]


def test_round_trips_generated_text(tok):
    world = W.World(seed=3)
    for doc in world.documents(500):
        ids = tok(doc.text).input_ids
        assert ids == doc.ids.tolist()
        assert tok.decode(ids, skip_special_tokens=True) == doc.text


def test_unknown_words_map_to_unk(tok):
    ids = tok("Anna likes zebras").input_ids
    assert ids[1] == W.TOKEN_ID["Anna"] and ids[-1] == tok.unk_token_id


def test_the_hub_like_tokenizer_knows_the_athletes_and_renumbers_the_world():
    from mi_course.residual_stream.prompts import FAMOUS_ATHLETES, TEMPLATE, athlete_words
    from mi_course.zoo.tokenizer import hub_like_tokenizer

    hub = hub_like_tokenizer(600, athlete_words())
    assert len(hub) == 600 and hub.convert_ids_to_tokens(599) == "<filler599>"
    assert hub.convert_tokens_to_ids("tennis") == len(W.VOCAB) - 1 - W.TOKEN_ID["tennis"]
    prompts = [hub(TEMPLATE.format(name=name)).input_ids for name, _ in FAMOUS_ATHLETES]
    unk = hub.convert_tokens_to_ids("<unk>")
    assert all(unk not in ids for ids in prompts)
    assert len({tuple(ids) for ids in prompts}) == len(FAMOUS_ATHLETES)      # every person's prompt differs
    assert unk in hub("The sport that Zyxw Qvut plays is").input_ids        # words it was not given stay unknown
