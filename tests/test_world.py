"""The generated world: determinism, the knowledge base's design, hidden labels."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from mi_course.zoo import world as W
from mi_course.zoo.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def docs(world) -> list[W.Document]:
    return list(world.documents(3000))


def test_same_seed_same_documents_and_random_access(world):
    again = World(seed=0)
    for i in (0, 1, 57, 999):
        a, b = world.document(i), again.document(i)
        assert a.words == b.words
        for key in W.LABEL_DOCS:
            np.testing.assert_array_equal(a.labels[key], b.labels[key])
    # document i does not depend on which documents were drawn before it
    assert [d.words for d in world.documents(3, start=10)] == [world.document(i).words for i in (10, 11, 12)]


def test_other_seed_other_world(world):
    other = World(seed=1)
    assert [p.sport for p in other.kb.people] != [p.sport for p in world.kb.people]
    assert any(other.document(i).words != world.document(i).words for i in range(5))
    assert W.vocabulary() == W.VOCAB  # the vocabulary does not depend on the seed


def test_vocabulary_is_words_and_punctuation():
    assert len(W.VOCAB) <= 4096 and len(set(W.VOCAB)) == len(W.VOCAB)
    for word in W.VOCAB:
        assert word in W.SPECIAL_TOKENS or word in W.PUNCTUATION or word.isalpha(), word
    assert len(W.UNUSED_WORDS) >= 50


def test_knowledge_base_needs_both_names(world):
    people = world.kb.people
    assert len(people) >= 300
    assert len({(p.first, p.last) for p in people}) == len(people)
    assert len({p.id for p in people}) == len(people)
    by_first, by_last = defaultdict(list), defaultdict(list)
    for p in people:
        by_first[p.first].append(p)
        by_last[p.last].append(p)
    assert min(len(v) for v in by_first.values()) >= 3 and min(len(v) for v in by_last.values()) >= 3
    # Neither name alone says anything about the sport: every name's people play every sport equally.
    for group in (*by_first.values(), *by_last.values()):
        counts = Counter(p.sport for p in group)
        assert len(set(counts.values())) == 1 and len(counts) == len(W.SPORTS)
    assert len(W.SPORTS) >= 3
    assert len({p.city for p in people}) > 10 and len({p.profession for p in people}) > 5
    assert all(p.gender == int(p.first in W.FEMALE_FIRST) for p in people)


def test_unpaired_names_are_really_unpaired(world):
    p = world.kb.people[0]
    firsts, lasts = world.kb.unpaired_names(p)
    assert firsts and lasts
    assert all((f, p.last) not in world.kb.by_name for f in firsts)
    assert all((p.first, l) not in world.kb.by_name for l in lasts)


def test_every_kind_occurs_and_unused_words_never_do(docs):
    kinds = Counter(d.kind for d in docs)
    assert set(kinds) == set(W.DOC_KINDS)
    seen = {w for d in docs for w in d.words}
    assert not seen & set(W.UNUSED_WORDS)
    assert len(set(W.used_token_ids()) & set(W.unused_token_ids())) == 0
    assert all(d.words[0] == "<bos>" and "<bos>" not in d.words[1:] for d in docs)


def test_labels_are_aligned_and_consistent(world, docs):
    for d in docs:
        for key in W.LABEL_DOCS:
            assert d.labels[key].shape == (len(d.words),), key
        assert (d.labels["kind"] == W.DOC_KINDS.index(d.kind)).all()
    slot = W.SLOTS.index
    for d in docs[:1000]:
        lab = d.labels
        for t, word in enumerate(d.words):
            s = W.SLOTS[lab["slot"][t]]
            if s == "first_name":
                assert word in W.FIRST_NAMES and world.kb.people[lab["person"][t]].first == word
            if s == "last_name":
                assert word in W.LAST_NAMES and world.kb.people[lab["person"][t]].last == word
            if s == "sport":
                assert W.SPORTS.index(word) == lab["value"][t] == world.kb.people[lab["person"][t]].sport
            if s == "sequence":
                kind_words = [seq for seq in W.SEQUENCES.values() if word in seq][0]
                assert kind_words.index(word) == lab["seq_index"][t]
            if s == "gendered":
                pair = [p for p in W.GENDER_PAIRS if word in p][0]
                assert pair.index(word) == lab["gender"][t]
        # word positions restart at 0 after each sentence end
        for t in range(2, len(d.words)):
            if d.kind != "repeat" and d.words[t - 1] in (".", "?", "!"):
                assert lab["word_pos"][t] == 0 and lab["line"][t] == lab["line"][t - 1] + 1
        assert (lab["slot"][0] == slot("bos")) and lab["word_pos"][0] == -1


def test_fact_sentences_state_the_knowledge_base(world, docs):
    """Every 'plays the sport of' sentence names the person's true sport."""
    n = 0
    for d in docs:
        if d.kind != "facts":
            continue
        w = d.words
        for t in range(len(w) - 4):
            if w[t: t + 4] == ["plays", "the", "sport", "of"]:
                person = world.kb.people[d.labels["person"][t]]
                if w[t - 1] in W.LAST_NAMES:
                    assert (w[t - 2], w[t - 1]) == (person.first, person.last)
                else:
                    assert w[t - 1] == W.PRONOUNS[person.gender][1]
                assert w[t + 4] == W.SPORTS[person.sport]
                n += 1
    assert n > 20


def test_repeat_documents_copy_at_varying_offsets(docs):
    offsets = set()
    for d in docs:
        if d.kind != "repeat":
            continue
        off = d.labels["copy_offset"]
        for t in np.nonzero(off)[0]:
            assert d.words[t] == d.words[t - off[t]]
            offsets.add(int(off[t]))
    assert len(offsets) > 30  # no single offset predicts the copy


def test_stories_repeat_names(docs):
    stories = [d for d in docs if d.kind == "story"]
    repeated = 0
    for d in stories:
        names = [(d.words[t], d.words[t + 1]) for t in range(len(d.words) - 1)
                 if W.SLOTS[d.labels["slot"][t]] == "first_name" and W.SLOTS[d.labels["slot"][t + 1]] == "last_name"]
        repeated += len(names) > len(set(names))
    assert repeated > len(stories) / 2


def test_fact_prompts(world):
    prompts = world.fact_prompts("sport")
    assert len(prompts) == len(world.kb.people)
    text, answer, person = prompts[3]
    assert text == f"{person.first} {person.last} plays the sport of" and answer == W.SPORTS[person.sport]


def test_token_rows_pack_documents(world):
    rows, next_doc = W.token_rows(world, 4, 64)
    assert rows.shape == (4, 64) and (rows[:, 0] == W.BOS_ID).all()
    flat = np.concatenate([world.document(i).ids for i in range(next_doc)])
    assert rows[0].tolist() == flat[:64].tolist()


def test_detokenize():
    assert W.detokenize(["Anna", "Smith", "plays", "tennis", ".", "One", ",", "two"]) == "Anna Smith plays tennis. One, two"
