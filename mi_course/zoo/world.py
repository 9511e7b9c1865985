"""A generated world of English-like text whose hidden variables are known.

The course's own language models are trained on documents drawn from this
world, so every probe, neuron and SAE feature can be scored against ground
truth. A world is fixed by its seed: the same seed always gives the same
knowledge base and the same documents (document ``i`` depends only on
``(seed, i)``, so documents can be drawn in any order).

What the world contains (see ``docs/world_and_zoo.md``):

* a **knowledge base** of 400 people. Each person has a first and a last name,
  a gender, a sport, a home city and a profession. Every first name and every
  last name is shared by 8 people, and those 8 people play 8 *different*
  sports, so neither name alone says anything about the sport: recalling it
  needs an AND of both name tokens.
* **countries** with their capitals (the people's home cities are capitals);
* **gendered word pairs** (king/queen, he/she, ...) in parallel sentences;
* **ordered sequences** (days, months, number words);
* short **stories** in which characters' names recur (induction in natural text);
* **repeat** documents: a span of random words repeated later (induction signal);
* 60 **unused words** that are in the vocabulary but never generated.

Every token comes with hidden labels (``Document.labels``): arrays aligned
with the tokens, e.g. the document kind, the template, the slot a word fills,
the person a sentence is about, the attribute value it states, the word's
position in its line, and for copied tokens the distance back to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator, Sequence

import numpy as np

# ----------------------------------------------------------------------------
# Word lists (fixed: the vocabulary does not depend on the seed)
# ----------------------------------------------------------------------------

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>", "<unk>")
PUNCTUATION = (".", ",", "?", "!")

MALE_FIRST = ("James", "John", "Robert", "Michael", "David", "William", "Thomas", "Daniel",
              "Paul", "Mark", "George", "Peter", "Henry", "Jack", "Oliver", "Samuel", "Adam",
              "Victor", "Hugo", "Felix", "Oscar", "Leo", "Max", "Simon", "Lucas")
FEMALE_FIRST = ("Mary", "Anna", "Emma", "Sarah", "Laura", "Julia", "Alice", "Clara", "Sophie",
                "Grace", "Lucy", "Hannah", "Olivia", "Rose", "Nora", "Ella", "Maria", "Eva",
                "Lily", "Ruth", "Helen", "Irene", "Diana", "Vera", "Mia")
FIRST_NAMES = MALE_FIRST + FEMALE_FIRST
LAST_NAMES = ("Smith", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Walker", "Hall",
              "Young", "Wright", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
              "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris",
              "Murphy", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Kelly",
              "Howard", "Ward", "Cox", "Richardson", "Watson", "Brooks", "Bennett", "Hughes",
              "Sanders", "Ross", "Jenkins", "Foster", "Powell", "Russell", "Griffin", "Hayes",
              "Myers")
SPORTS = ("baseball", "basketball", "football", "tennis", "golf", "hockey", "cricket", "rugby")
PROFESSIONS = ("doctor", "teacher", "lawyer", "farmer", "baker", "pilot", "nurse", "engineer",
               "painter", "singer", "writer", "architect")
COUNTRIES = (("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
             ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Norway", "Oslo"),
             ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
             ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Hungary", "Budapest"),
             ("Ireland", "Dublin"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Japan", "Tokyo"),
             ("China", "Beijing"), ("India", "Delhi"), ("Russia", "Moscow"), ("Peru", "Lima"),
             ("Chile", "Santiago"), ("Canada", "Ottawa"), ("Turkey", "Ankara"),
             ("Thailand", "Bangkok"), ("Cuba", "Havana"), ("Belgium", "Brussels"),
             ("Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Czechia", "Prague"),
             ("Romania", "Bucharest"), ("Vietnam", "Hanoi"), ("Australia", "Canberra"),
             ("Morocco", "Rabat"), ("Ghana", "Accra"), ("Colombia", "Bogota"), ("Korea", "Seoul"),
             ("Iran", "Tehran"))
# (male, female): the relation vector male -> female should appear in embeddings.
GENDER_PAIRS = (("king", "queen"), ("man", "woman"), ("boy", "girl"), ("father", "mother"),
                ("son", "daughter"), ("brother", "sister"), ("husband", "wife"),
                ("uncle", "aunt"), ("prince", "princess"), ("actor", "actress"),
                ("waiter", "waitress"), ("nephew", "niece"), ("grandfather", "grandmother"),
                ("lord", "lady"), ("monk", "nun"), ("duke", "duchess"))
PRONOUNS = {  # gender -> (subject, Subject, object, possessive, Possessive)
    0: ("he", "He", "him", "his", "His"),
    1: ("she", "She", "her", "her", "Her"),
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
           "eighteen", "nineteen", "twenty")
SEQUENCES = {"day": DAYS, "month": MONTHS, "number": NUMBERS}
PLACES = ("market", "park", "school", "station", "river", "beach", "library", "garden", "castle",
          "church", "harbor", "forest", "museum", "bridge", "village", "farm", "hospital",
          "bakery", "hill", "lake")
OBJECTS = ("book", "letter", "apple", "hat", "key", "ring", "map", "coin", "cup", "box", "lamp",
           "bag", "flower", "bottle", "pen", "clock", "shell", "stone", "ticket", "photo",
           "umbrella", "orange", "egg", "candle", "blanket", "kite", "drum", "basket")
ADJECTIVES = ("happy", "sad", "tired", "angry", "calm", "brave", "quiet", "hungry", "proud",
              "afraid", "busy", "late", "kind", "cold", "warm", "lucky", "curious", "sleepy")
COLORS = ("red", "blue", "green", "yellow", "black", "white", "brown", "gray", "purple", "pink")
ANIMALS = ("dog", "cat", "horse", "bird", "fox", "rabbit", "cow", "sheep", "goat", "duck",
           "mouse", "owl", "frog", "bear", "wolf", "deer")
FOODS = ("bread", "soup", "cheese", "rice", "fish", "cake", "honey", "milk", "tea", "coffee",
         "pie", "salad", "pasta", "jam")
# Words that are in the vocabulary but never appear in generated text.
UNUSED_WORDS = tuple(
    "abacus abbey adage aegis alcove almanac amulet anvil aria atrium azure bastion bauble "
    "bayou belfry bodice bonnet brine bugle cairn caliph canopy cascade cipher citadel cobalt "
    "compass corsair crypt dirge dulcimer ember epoch fable falcon fjord flagon gale garnet "
    "glacier goblet grotto harp heron ingot isle jasper kelp lagoon lantern locket lute "
    "mantle marsh meadow mosaic nectar obelisk onyx opal".split())

# Words the generator writes outside templates (articles, sequence kinds).
EXTRA_WORDS = ("a", "an", "day", "month", "number")

# ----------------------------------------------------------------------------
# Hidden labels
# ----------------------------------------------------------------------------

DOC_KINDS = ("facts", "capitals", "gender", "sequence", "story", "repeat")
SLOTS = ("bos", "text", "punct", "first_name", "last_name", "pronoun", "sport", "city",
         "profession", "country", "capital", "gendered", "sequence", "random", "place",
         "object", "adjective", "color", "animal", "food")
ATTRIBUTES = ("none", "sport", "city", "profession", "capital", "sequence", "gender")

LABEL_DOCS = {
    "kind": "index into DOC_KINDS of the document the token belongs to",
    "template": "index into TEMPLATES of the sentence template (-1: none, e.g. random spans)",
    "slot": "index into SLOTS: the role the word fills ('text' = fixed template word)",
    "person": "id of the person the sentence is about or the name refers to (-1: none)",
    "attribute": "index into ATTRIBUTES: what the sentence states",
    "value": "index of the stated value in its list (SPORTS, capitals, PROFESSIONS, ...; -1: none)",
    "gender": "0 male, 1 female, -1 none (gendered words, pronouns, first names, sentences about a person)",
    "seq_index": "position of a day/month/number word in its sequence (-1: not a sequence word)",
    "line": "index of the line (sentence) in the document (BOS: -1)",
    "word_pos": "position of the word in its line, 0-based (BOS: -1)",
    "copy_offset": "for a token that copies an earlier span (repeat docs): how many tokens back its original is; 0 otherwise",
}


# ----------------------------------------------------------------------------
# Knowledge base
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    id: int
    first: str
    last: str
    gender: int          # 0 male, 1 female (follows the first name)
    sport: int           # index into SPORTS
    city: int            # index into COUNTRIES (the person lives in its capital)
    profession: int      # index into PROFESSIONS

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class KnowledgeBase:
    people: tuple[Person, ...]

    @cached_property
    def by_name(self) -> dict[tuple[str, str], Person]:
        return {(p.first, p.last): p for p in self.people}

    def unpaired_names(self, person: Person) -> tuple[list[str], list[str]]:
        """First names never paired with ``person.last`` and last names never paired with ``person.first``."""
        firsts = [f for f in FIRST_NAMES if (f, person.last) not in self.by_name]
        lasts = [l for l in LAST_NAMES if (person.first, l) not in self.by_name]
        return firsts, lasts


def build_knowledge_base(seed: int = 0, people_per_name: int = len(SPORTS)) -> KnowledgeBase:
    """People as the union of ``people_per_name`` random perfect matchings of first and last names.

    Matching ``m`` gives every first name one last name (and vice versa), and
    everyone in matching ``m`` plays sport ``m``. So every name is shared by
    ``people_per_name`` people who all play different sports: the sport is a
    function of the *pair* of names only. Cities and professions are random.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(FIRST_NAMES)
    assert len(LAST_NAMES) == n and people_per_name <= len(SPORTS)
    used: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int, int]] = []  # (first, last, sport)
    for m in range(people_per_name):
        while True:
            perm = rng.permutation(n)
            if not any((i, int(perm[i])) in used for i in range(n)):
                break
        for i in range(n):
            used.add((i, int(perm[i])))
            pairs.append((i, int(perm[i]), m))
    order = rng.permutation(len(pairs))
    people = []
    for pid, k in enumerate(order):
        f, l, sport = pairs[k]
        people.append(Person(id=pid, first=FIRST_NAMES[f], last=LAST_NAMES[l],
                             gender=int(FIRST_NAMES[f] in FEMALE_FIRST), sport=sport,
                             city=int(rng.integers(len(COUNTRIES))),
                             profession=int(rng.integers(len(PROFESSIONS)))))
    return KnowledgeBase(tuple(people))


# ----------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------

@dataclass
class Document:
    """One generated document: words (BOS first) and aligned hidden labels."""

    kind: str
    words: list[str]
    labels: dict[str, np.ndarray]   # each int64 [len(words)]

    @property
    def text(self) -> str:
        """The document as text (without BOS); the tokenizer turns it back into ``words``."""
        return detokenize(self.words[1:])

    @property
    def ids(self) -> np.ndarray:
        """Token ids, BOS first. int64 [len(words)]"""
        return np.array([TOKEN_ID[w] for w in self.words], dtype=np.int64)


class _Builder:
    """Accumulates words and their labels; one instance per document."""

    def __init__(self, kind: str):
        self.kind = kind
        self.words: list[str] = ["<bos>"]
        self.rows: list[dict[str, int]] = [dict(slot=SLOTS.index("bos"), line=-1, word_pos=-1)]
        self.line, self.word_pos = 0, 0

    def add(self, word: str, slot: str = "text", **labels: int) -> None:
        assert word in TOKEN_ID, word
        if slot == "text" and word in PUNCTUATION:
            slot = "punct"
        self.words.append(word)
        self.rows.append(dict(slot=SLOTS.index(slot), line=self.line, word_pos=self.word_pos, **labels))
        self.word_pos += 1
        if word in (".", "?", "!"):
            self.line, self.word_pos = self.line + 1, 0

    def sentence(self, template: int, parts: Sequence[tuple[str, str]], **labels: int) -> None:
        """Add ``parts`` = [(word, slot), ...]; ``labels`` apply to every word of the sentence."""
        for word, slot in parts:
            extra = dict(labels)
            if word in TOKEN_ID and slot in ("gendered", "pronoun", "first_name"):
                extra.setdefault("gender", _word_gender(word))
            self.add(word, slot, template=template, **extra)

    def build(self) -> Document:
        n = len(self.words)
        defaults = dict(kind=DOC_KINDS.index(self.kind), template=-1, slot=0, person=-1,
                        attribute=0, value=-1, gender=-1, seq_index=-1, line=-1, word_pos=-1,
                        copy_offset=0)
        labels = {k: np.full(n, v, dtype=np.int64) for k, v in defaults.items()}
        for t, row in enumerate(self.rows):
            for k, v in row.items():
                labels[k][t] = v
        return Document(self.kind, self.words, labels)


def _word_gender(word: str) -> int:
    for m, f in GENDER_PAIRS:
        if word == m:
            return 0
        if word == f:
            return 1
    if word in MALE_FIRST or word in PRONOUNS[0]:
        return 0
    if word in FEMALE_FIRST or word in PRONOUNS[1]:
        return 1
    return -1


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _parse(template: str, fill: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """'{A} plays {S} .' -> [(word, slot), ...]; fill maps a key to (words, slot)."""
    parts: list[tuple[str, str]] = []
    for tok in template.split():
        if tok.startswith("{"):
            words, slot = fill[tok[1:-1]]
            parts.extend((w, slot) for w in words.split())
        else:
            parts.append((tok, "text"))
    return parts


# Templates: "{N}" = the person's full name (or a pronoun), "{V}" = the value.
FACT_TEMPLATES = {
    "sport": ("{N} plays the sport of {V} .", "{N} plays {V} .", "The sport that {N} plays is {V} .",
              "{N} is a {V} player ."),
    "city": ("{N} lives in {V} .", "{N} lives in the city of {V} .", "The home of {N} is {V} ."),
    "profession": ("{N} works as {art} {V} .", "{N} is {art} {V} .", "The job of {N} is {V} ."),
}
CAPITAL_TEMPLATES = ("The capital of {C} is {V} .", "{V} is the capital of {C} .",
                     "{V} is a city in {C} .", "The country {C} has the capital {V} .")
GENDER_TEMPLATES = ("The {N} said that {he} was {adj} .", "The {N} lost {his} {obj} .",
                    "{He} is a {N} .", "The {N} and {his} {N2} went to the {place} .",
                    "The old {N} smiled at {his} {N2} .", "Today the {N} felt {adj} .")
SEQUENCE_TEMPLATES = ("{list} .", "After {x} comes {y} .", "The {kind} after {x} is {y} .")
STORY_TEMPLATES = (
    "One day {A} went to the {place} .", "{A} met {B} at the {place} .", "{A} gave {B} {art} {obj} .",
    "{A} asked {B} about the {obj} .", "{A} and {B} walked to the {place} .", "{A} was {adj} .",
    "{A} found {art} {obj} near the {place} .", "Then {A} told {B} a story .", "{A} thanked {B} .",
    "{A} waited for {B} at the {place} .", "{A} saw a {color} {animal} near the {place} .",
    "{A} ate some {food} with {B} .", "Later {A} called {B} .", "{A} bought {art} {obj} .",
    "{A} helped {B} .", "{A} laughed .",
)
TEMPLATES: tuple[str, ...] = (
    *[f"facts/{a}/{t}" for a, ts in FACT_TEMPLATES.items() for t in ts],
    *[f"capitals/{t}" for t in CAPITAL_TEMPLATES],
    *[f"gender/{t}" for t in GENDER_TEMPLATES],
    *[f"sequence/{t}" for t in SEQUENCE_TEMPLATES],
    *[f"story/{t}" for t in STORY_TEMPLATES],
)


# ----------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------

def _unique(words: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in words:
        seen.setdefault(w, None)
    return tuple(seen)


def vocabulary() -> tuple[str, ...]:
    """Every token of the world, in id order: specials first, unused words last.

    The order is fixed by this file (not by a seed), so one tokenizer serves
    every world. returns: tuple of ``d_vocab`` words
    """
    gendered = [w for pair in GENDER_PAIRS for w in pair]
    pronouns = [w for g in (0, 1) for w in PRONOUNS[g]]
    countries = [c for c, _ in COUNTRIES] + [cap for _, cap in COUNTRIES]
    template_words = [w for t in TEMPLATES for w in t.split("/")[-1].split() if not w.startswith("{")]
    used = _unique([*PUNCTUATION, *template_words, *EXTRA_WORDS, *FIRST_NAMES, *LAST_NAMES, *SPORTS,
                    *PROFESSIONS, *countries, *gendered, *pronouns, *DAYS, *MONTHS, *NUMBERS,
                    *PLACES, *OBJECTS, *ADJECTIVES, *COLORS, *ANIMALS, *FOODS])
    assert not set(used) & set(UNUSED_WORDS) and not set(used) & set(SPECIAL_TOKENS)
    return (*SPECIAL_TOKENS, *used, *UNUSED_WORDS)


VOCAB: tuple[str, ...] = vocabulary()
TOKEN_ID: dict[str, int] = {w: i for i, w in enumerate(VOCAB)}
BOS_ID = TOKEN_ID["<bos>"]


def used_token_ids() -> np.ndarray:
    """Ids of the words that generated text can contain (no specials, no unused words).

    returns: int64 [n_used]
    """
    skip = set(SPECIAL_TOKENS) | set(UNUSED_WORDS)
    return np.array([i for i, w in enumerate(VOCAB) if w not in skip], dtype=np.int64)


def unused_token_ids() -> np.ndarray:
    """Ids of the ``UNUSED_WORDS``: in the vocabulary, never in generated text. int64 [60]"""
    return np.array([TOKEN_ID[w] for w in UNUSED_WORDS], dtype=np.int64)


def detokenize(words: Sequence[str]) -> str:
    """Join words into text: one space between words, none before punctuation.

    This is exactly what the tokenizer's decoder does, so
    ``detokenize(words)`` encodes back to ``words``.
    """
    out = ""
    for w in words:
        out += w if (not out or w in PUNCTUATION) else " " + w
    return out



def _template_id(group: str, text: str) -> int:
    return TEMPLATES.index(f"{group}/{text}")


class World:
    """A seeded generator of documents (see the module docstring).

    >>> world = World(seed=0)
    >>> doc = world.document(7)            # deterministic in (seed, 7)
    >>> doc.words[:4], doc.labels["slot"][:4]
    """

    DEFAULT_MIX = {"facts": 0.3, "capitals": 0.05, "gender": 0.1, "sequence": 0.1,
                   "story": 0.25, "repeat": 0.2}

    def __init__(self, seed: int = 0, mix: dict[str, float] | None = None):
        self.seed = seed
        self.kb = build_knowledge_base(seed)
        mix = dict(mix or self.DEFAULT_MIX)
        unknown = set(mix) - set(DOC_KINDS)
        if unknown:
            raise ValueError(f"unknown document kinds {sorted(unknown)}; choose from {DOC_KINDS}")
        self.kinds = [k for k in DOC_KINDS if mix.get(k, 0) > 0]
        w = np.array([mix[k] for k in self.kinds], dtype=np.float64)
        self.kind_probs = w / w.sum()
        self._random_pool = [VOCAB[i] for i in used_token_ids() if VOCAB[i] not in PUNCTUATION]
        self._generators: dict[str, Callable[[np.random.Generator], Document]] = {
            "facts": self._facts, "capitals": self._capitals, "gender": self._gender,
            "sequence": self._sequence, "story": self._story, "repeat": self._repeat,
        }

    # -- public API ---------------------------------------------------------

    def document(self, index: int, kind: str | None = None) -> Document:
        """Document number ``index`` of this world (of the given kind, if set)."""
        rng = np.random.default_rng([self.seed, 2, index])
        if kind is None:
            kind = self.kinds[int(rng.choice(len(self.kinds), p=self.kind_probs))]
        return self._generators[kind](rng)

    def documents(self, n: int, start: int = 0, kind: str | None = None) -> Iterator[Document]:
        """Documents ``start .. start + n - 1``."""
        for i in range(start, start + n):
            yield self.document(i, kind)

    def fact_prompts(self, attribute: str = "sport") -> list[tuple[str, str, Person]]:
        """One prompt per person, e.g. ("Anna Smith plays the sport of", "tennis", person)."""
        relation = {"sport": "plays the sport of", "city": "lives in",
                    "profession": "works as"}[attribute]
        return [(f"{p.name} {relation}", _value_word(p, attribute), p) for p in self.kb.people]

    # -- document kinds -------------------------------------------------------

    def _name(self, person: Person, b: _Builder, rng: np.random.Generator, template: int,
              full: bool, allow_pronoun: bool, object_case: bool = False) -> None:
        """Write a mention of ``person``: the full name, the first name only, or a pronoun."""
        r = rng.random()
        if allow_pronoun and not full and r < 0.15:
            pro = PRONOUNS[person.gender]
            word = pro[2] if object_case else (pro[1] if b.word_pos == 0 else pro[0])
            b.add(word, "pronoun", template=template, person=person.id, gender=person.gender)
            return
        b.add(person.first, "first_name", template=template, person=person.id, gender=person.gender)
        if full or r < 0.8:
            b.add(person.last, "last_name", template=template, person=person.id, gender=person.gender)

    def _facts(self, rng: np.random.Generator) -> Document:
        """A short biography: 1-3 facts about one or two people, in random templates."""
        b = _Builder("facts")
        for _ in range(int(rng.integers(1, 3))):
            person = self.kb.people[int(rng.integers(len(self.kb.people)))]
            attrs = list(FACT_TEMPLATES)
            rng.shuffle(attrs)
            for j, attr in enumerate(attrs[: int(rng.integers(1, 4))]):
                text = FACT_TEMPLATES[attr][int(rng.integers(len(FACT_TEMPLATES[attr])))]
                self._fact_sentence(b, rng, person, attr, text, pronoun_ok=j > 0)
        return b.build()

    def _fact_sentence(self, b: _Builder, rng: np.random.Generator, person: Person, attr: str,
                       text: str, pronoun_ok: bool) -> None:
        tid = _template_id(f"facts/{attr}", text)
        value = _value_word(person, attr)
        labels = dict(person=person.id, attribute=ATTRIBUTES.index(attr),
                      value=_value_index(person, attr), gender=person.gender)
        for tok in text.split():
            if tok == "{N}":
                starts = b.word_pos == 0
                use_pronoun = pronoun_ok and starts and rng.random() < 0.3
                if use_pronoun:
                    b.add(PRONOUNS[person.gender][1], "pronoun", template=tid, **labels)
                else:
                    b.add(person.first, "first_name", template=tid, **labels)
                    b.add(person.last, "last_name", template=tid, **labels)
            elif tok == "{V}":
                b.add(value, attr, template=tid, **labels)
            elif tok == "{art}":
                b.add(_article(value), "text", template=tid, **labels)
            else:
                b.add(tok, "text", template=tid, **labels)

    def _capitals(self, rng: np.random.Generator) -> Document:
        b = _Builder("capitals")
        for _ in range(int(rng.integers(1, 4))):
            c = int(rng.integers(len(COUNTRIES)))
            text = CAPITAL_TEMPLATES[int(rng.integers(len(CAPITAL_TEMPLATES)))]
            country, capital = COUNTRIES[c]
            parts = _parse(text, {"C": (country, "country"), "V": (capital, "capital")})
            b.sentence(_template_id("capitals", text), parts, attribute=ATTRIBUTES.index("capital"),
                       value=c)
        return b.build()

    def _gender(self, rng: np.random.Generator) -> Document:
        """Parallel sentences: the same templates with the male or the female word of each pair."""
        b = _Builder("gender")
        g = int(rng.integers(2))
        for _ in range(int(rng.integers(1, 4))):
            text = GENDER_TEMPLATES[int(rng.integers(len(GENDER_TEMPLATES)))]
            i, j = rng.choice(len(GENDER_PAIRS), size=2, replace=False)
            pro = PRONOUNS[g]
            fill = {"N": (GENDER_PAIRS[i][g], "gendered"), "N2": (GENDER_PAIRS[j][g], "gendered"),
                    "he": (pro[0], "pronoun"), "He": (pro[1], "pronoun"), "his": (pro[3], "pronoun"),
                    "adj": (_pick(rng, ADJECTIVES), "adjective"), "obj": (_pick(rng, OBJECTS), "object"),
                    "place": (_pick(rng, PLACES), "place")}
            b.sentence(_template_id("gender", text), _parse(text, fill),
                       attribute=ATTRIBUTES.index("gender"), gender=g)
        return b.build()

    def _sequence(self, rng: np.random.Generator) -> Document:
        """Runs of days, months or number words, and 'after X comes Y' sentences."""
        b = _Builder("sequence")
        for _ in range(int(rng.integers(1, 3))):
            kind = ("day", "month", "number")[int(rng.integers(3))]
            items = SEQUENCES[kind]
            text = SEQUENCE_TEMPLATES[int(rng.integers(len(SEQUENCE_TEMPLATES)))]
            tid = _template_id("sequence", text)
            wraps = kind != "number"
            start = int(rng.integers(len(items) if wraps else len(items) - 1))
            attr = dict(attribute=ATTRIBUTES.index("sequence"))
            if text == "{list} .":
                length = int(rng.integers(3, 9))
                idx = [(start + k) % len(items) for k in range(length)]
                if not wraps:
                    idx = [k for k in range(start, min(start + length, len(items)))]
                for k, ix in enumerate(idx):
                    if k:
                        b.add(",", template=tid, **attr)
                    b.add(items[ix], "sequence", template=tid, seq_index=ix, **attr)
                b.add(".", template=tid, **attr)
            else:
                nxt = (start + 1) % len(items)
                for tok in text.split():
                    if tok in ("{x}", "{y}"):
                        ix = start if tok == "{x}" else nxt
                        b.add(items[ix], "sequence", template=tid, seq_index=ix, **attr)
                    elif tok == "{kind}":
                        b.add(kind, "text", template=tid, **attr)
                    else:
                        b.add(tok, "text", template=tid, **attr)
        return b.build()

    def _story(self, rng: np.random.Generator) -> Document:
        """A short story about two or three people whose names recur (natural induction).

        A character's first mention is the full name; later mentions are
        mostly the full name again, sometimes the first name alone or a
        pronoun. First names are shared by several people, so after "Anna"
        only the story so far tells whether "Smith" comes next.
        """
        b = _Builder("story")
        ids = rng.choice(len(self.kb.people), size=int(rng.integers(2, 4)), replace=False)
        cast = [self.kb.people[int(i)] for i in ids]
        introduced: set[int] = set()
        for s in range(int(rng.integers(4, 11))):
            text = STORY_TEMPLATES[0] if s == 0 else STORY_TEMPLATES[int(rng.integers(1, len(STORY_TEMPLATES)))]
            tid = _template_id("story", text)
            order = rng.permutation(len(cast)) if s else np.arange(len(cast))
            a, o = cast[int(order[0])], cast[int(order[1])]
            obj = _pick(rng, OBJECTS)
            for tok in text.split():
                if tok in ("{A}", "{B}"):
                    who = a if tok == "{A}" else o
                    is_object = tok == "{B}" and b.words[-1] != "and"
                    self._name(who, b, rng, tid, full=who.id not in introduced,
                               allow_pronoun=s > 0, object_case=is_object)
                    introduced.add(who.id)
                elif tok == "{art}":
                    b.add(_article(obj), template=tid)
                elif tok in ("{obj}", "{place}", "{adj}", "{color}", "{animal}", "{food}"):
                    key = tok[1:-1]
                    word = obj if key == "obj" else _pick(rng, _POOLS[key])
                    b.add(word, _SLOT_OF[key], template=tid)
                else:
                    b.add(tok, template=tid)
        return b.build()

    def _repeat(self, rng: np.random.Generator) -> Document:
        """Random words, with a span of them repeated later at random distances.

        Layout: [random prefix][span]([random gap][span again, maybe cut short])*
        Half the documents have one long span (5-50 words) copied once or twice
        after gaps of 0-40 words; the other half a short span (3-20 words)
        copied 2-5 times after gaps of 0-12 words. Span lengths, gaps and where
        the first copy starts all vary, so no fixed offset predicts a copy:
        only induction (find the earlier occurrence, copy what came next) does.
        """
        b = _Builder("repeat")
        pool = self._random_pool
        if rng.random() < 0.5:
            span_len, n_copies, max_gap = int(rng.integers(5, 51)), int(rng.integers(1, 3)), 40
        else:
            span_len, n_copies, max_gap = int(rng.integers(3, 21)), int(rng.integers(2, 6)), 12
        span = [pool[int(k)] for k in rng.integers(len(pool), size=span_len)]
        for _ in range(int(rng.integers(0, 20))):
            b.add(_pick(rng, pool), "random")
        first_start = len(b.words)
        for w in span:
            b.add(w, "random")
        for _ in range(n_copies):
            for _ in range(int(rng.integers(0, max_gap + 1))):
                b.add(_pick(rng, pool), "random")
            offset = len(b.words) - first_start
            for w in span[: int(rng.integers(max(2, span_len // 2), span_len + 1))]:
                b.add(w, "random", copy_offset=offset)
        b.line = b.word_pos = 0
        return b.build()


_POOLS = {"place": PLACES, "adj": ADJECTIVES, "color": COLORS, "animal": ANIMALS, "food": FOODS}
_SLOT_OF = {"obj": "object", "place": "place", "adj": "adjective", "color": "color",
            "animal": "animal", "food": "food"}


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _value_word(person: Person, attribute: str) -> str:
    if attribute == "sport":
        return SPORTS[person.sport]
    if attribute == "city":
        return COUNTRIES[person.city][1]
    if attribute == "profession":
        return PROFESSIONS[person.profession]
    raise ValueError(f"unknown attribute {attribute!r}; choose sport, city or profession")


def _value_index(person: Person, attribute: str) -> int:
    return {"sport": person.sport, "city": person.city, "profession": person.profession}[attribute]


# ----------------------------------------------------------------------------
# Token streams for training
# ----------------------------------------------------------------------------

def token_rows(world: World, n_rows: int, n_ctx: int, start_doc: int = 0) -> tuple[np.ndarray, int]:
    """Pack documents (each starting with BOS) into rows of ``n_ctx`` token ids.

    A row is filled with whole documents; the document that does not fit is
    cut at the row's end and the next row starts a fresh document.
    returns: (ids int64 [n_rows, n_ctx], index of the next unused document)
    """
    rows = np.empty((n_rows, n_ctx), dtype=np.int64)
    doc = start_doc
    for r in range(n_rows):
        filled = 0
        while filled < n_ctx:
            ids = world.document(doc).ids
            doc += 1
            take = min(len(ids), n_ctx - filled)
            rows[r, filled: filled + take] = ids[:take]
            filled += take
    return rows, doc
