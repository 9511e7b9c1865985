"""Checking a puzzle's answer without storing it: salted hashes, hints, nudges, progress.

    >>> check_answer("P1", "b")          # ✅ or ❌ with a message that never gives the answer away
    >>> hint("P1")                       # the next hint, one more per call

**What is stored.** For each question: a random salt, and the SHA-256 digests of ``salt | form`` for every
accepted *normalised* form of the answer. Known wrong answers are stored the same way, with a nudge each.
Reading this file tells you which question takes a letter, a text or a number, never which answer.

**Normalisation** (so that every correct form is accepted):

* ``choice``: a letter (``"b"``, ``"(b)"``, ``"B."``) or an option's text; extra accepted phrasings are
  hashed like the letter;
* ``text``: lower case, punctuation and extra spaces dropped, a leading "the" dropped; ``2`` and ``2.0``
  read as ``"2"``;
* ``number``: a number or a string (``"0.5"``, ``"50%"``, ``"0,5"``, ``"1/2"``). Fractions also
  accept percentages (a bare number above 1 is read as a percentage). The value is rounded to a grid of
  step ``step``; the digest of the true grid cell is stored, and an answer passes when its cell is within
  ``cells`` cells of it. So the tolerance is ``± step * (cells + ½)`` around the stored cell, and only
  the cell's digest is stored, never the number.

**Honestly**: a hash stops reading, not searching. Anyone who loops over a grid of numbers or over the
letters can find an answer in a second; the puzzles are for learning, and the answer is also in
``solutions/puzzles/``.

**Instructors**: :func:`make_question` (or ``python -m mi_course.embeddings.answers --help``) prints the
entry for a new answer to paste into :data:`QUESTIONS`. The answer itself then lives only in the solution
notebook.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from .. import progress
from ..puzzles import question_ids


@dataclass(frozen=True)
class Question:
    """One answer cell's question, as stored: digests only."""

    id: str
    kind: str                                  # "choice" | "text" | "number"
    salt: str
    digests: tuple[str, ...]                   # accepted forms (choice: the letter and aliases; number: grid cell)
    choices: dict[str, str] = field(default_factory=dict)   # choice: letter -> option text (public)
    step: float = 0.0                          # number: grid step
    cells: int = 0                             # number: accepted cells on either side
    fraction: bool = False                     # number: a value between 0 and 1 (percentages accepted)
    hints: tuple[str, ...] = ()
    nudges: tuple[tuple[str, str], ...] = ()   # (digest of a known wrong answer, what to look at)

    @property
    def tolerance(self) -> str:
        return f"± {self.step * self.cells:g}" if self.kind == "number" else "exact"


@dataclass(frozen=True)
class Verdict:
    """What :func:`check_answer` returns; true when the answer is accepted."""

    question_id: str
    status: str      # "solved" | "wrong" | "unreadable" | "missing"
    message: str

    def __bool__(self) -> bool:
        return self.status == "solved"

    def __str__(self) -> str:
        mark = {"solved": "✅ solved", "missing": "⏳ no answer yet"}.get(self.status, "❌ not yet")
        return f"{mark} [{self.question_id}] {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour, border = {"solved": ("#e9f7ef", "#2e7d32"), "missing": ("#fff8e1", "#f9a825")}.get(
            self.status, ("#fdecea", "#c62828"))
        return (f'<div style="background:{colour};border-left:4px solid {border};padding:6px 10px;'
                f'font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap">'
                f"{html.escape(str(self))}</div>")


# --- normalising and hashing ------------------------------------------------------------------

def digest(salt: str, form: str) -> str:
    """The stored digest of one normalised form: first 24 hex digits of SHA-256(salt | form)."""
    return hashlib.sha256(f"{salt}|{form}".encode()).hexdigest()[:24]


def normalise_text(answer: Any) -> str:
    """Lower case, punctuation and extra spaces dropped, a leading "the" dropped; whole floats as integers."""
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    text = re.sub(r"[^0-9a-z]+", " ", str(answer).lower()).strip()
    return re.sub(r"^the ", "", text)


def parse_number(answer: Any, fraction: bool = False) -> float | None:
    """A float from a number or a string (``"50%"``, ``"0,5"``, ``"3/8"``); ``None`` if there is none."""
    if hasattr(answer, "item"):                      # a 0-d tensor or NumPy scalar
        answer = answer.item()
    if isinstance(answer, bool):
        return None
    percent = False
    if isinstance(answer, str):
        text = answer.strip().replace(" ", "")
        percent = text.endswith("%")
        text = text.rstrip("%")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            answer = float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            return None
    if not isinstance(answer, (int, float)):
        return None
    value = float(answer)
    if percent or (fraction and 1 < abs(value) <= 100):
        value /= 100
    return value


def _choice_form(question: Question, answer: Any) -> str | None:
    """The letter of an option given by letter or by text; else the normalised text (aliases)."""
    text = str(answer).strip().lower().strip("()[]. ")
    if text in question.choices:
        return text
    normalised = normalise_text(answer)
    for letter, option in question.choices.items():
        if normalise_text(option) == normalised:
            return letter
    return normalised or None


def _candidates(question: Question, answer: Any) -> list[str] | None:
    """The digests an answer may match (a neighbourhood of grid cells for numbers); None if unreadable."""
    if question.kind == "number":
        value = parse_number(answer, question.fraction)
        if value is None:
            return None
        cell = round(value / question.step)
        return [digest(question.salt, str(cell + k)) for k in range(-question.cells, question.cells + 1)]
    form = _choice_form(question, answer) if question.kind == "choice" else normalise_text(answer)
    return None if not form else [digest(question.salt, form)]


# --- checking ---------------------------------------------------------------------------------

_HINTS_SHOWN: dict[str, int] = {}


def _question(question_id: str) -> Question:
    if question_id not in QUESTIONS:
        raise KeyError(f"No question {question_id!r}; questions are {question_ids()}")
    return QUESTIONS[question_id]


def _form_help(question: Question) -> str:
    if question.kind == "choice":
        return f"Answer with a letter ({', '.join(question.choices)}) or the option's text."
    if question.kind == "number":
        return f"Answer with a number (accepted within {question.tolerance})."
    return "Answer with a short text."


def evaluate(question_id: str, answer: Any) -> Verdict:
    """The verdict on ``answer``, without printing or recording anything."""
    question = _question(question_id)
    if callable(answer):
        try:
            answer = answer()
        except NotImplementedError:
            return Verdict(question_id, "missing", "Write your answer in the cell above: replace the `raise` "
                                                   "with `return <your answer>`.")
    if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
        return Verdict(question_id, "missing", _form_help(question))
    candidates = _candidates(question, answer)
    if candidates is None:
        return Verdict(question_id, "unreadable", f"I could not read {answer!r}. {_form_help(question)}")
    if set(candidates) & set(question.digests):
        what = "Bonus question solved" if "." in question_id else "Puzzle solved"
        return Verdict(question_id, "solved", f"{what}, and recorded in your progress file.")
    for wrong, nudge in question.nudges:
        if wrong in candidates:
            return Verdict(question_id, "wrong", nudge)
    more = f" Stuck? hint({question_id!r}) gives a hint." if question.hints else ""
    return Verdict(question_id, "wrong", f"That is not it.{more}")


def check_answer(question_id: str, answer: Any | Callable[[], Any]) -> Verdict:
    """Check an answer (a value, or a function that returns it); record the solve in the progress file."""
    verdict = evaluate(question_id, answer)
    if verdict:
        progress.record_pass(question_id)
    return verdict


def hint(question_id: str, number: int | None = None) -> str:
    """The next hint for a question (or hint ``number``, from 1). Hints never state the answer."""
    question = _question(question_id)
    if not question.hints:
        return f"[{question_id}] No hints for this one."
    shown = number if number is not None else _HINTS_SHOWN.get(question_id, 0) + 1
    shown = max(1, min(shown, len(question.hints)))
    _HINTS_SHOWN[question_id] = shown
    text = f"[{question_id}] Hint {shown}/{len(question.hints)}: {question.hints[shown - 1]}"
    print(text)
    return text


# --- for instructors: making an entry ----------------------------------------------------------

def _form_digests(kind: str, salt: str, value: Any, step: float, fraction: bool) -> str:
    if kind == "number":
        number = parse_number(value, fraction)
        if number is None:
            raise ValueError(f"not a number: {value!r}")
        return digest(salt, str(round(number / step)))
    return digest(salt, normalise_text(value))


def make_question(question_id: str, kind: str, answers: list[Any], wrong: dict[Any, str] | None = None,
                  choices: dict[str, str] | None = None, step: float = 0.0, cells: int = 0,
                  fraction: bool = False, hints: tuple[str, ...] = (), salt: str | None = None) -> Question:
    """A :class:`Question` for new answers, with a fresh salt. ``answers``: every accepted form (for a
    choice: the letter and any extra phrasings; for a number: the value); ``wrong``: known wrong answer ->
    the nudge to show."""
    if kind not in ("choice", "text", "number"):
        raise ValueError("kind is 'choice', 'text' or 'number'")
    if kind == "number" and step <= 0:
        raise ValueError("a number needs a grid step > 0")
    salt = salt or f"{question_id}:{secrets.token_hex(8)}"
    digests = tuple(dict.fromkeys(_form_digests(kind, salt, a, step, fraction) for a in answers))
    nudges = tuple((_form_digests(kind, salt, w, step, fraction), msg) for w, msg in (wrong or {}).items())
    return Question(question_id, kind, salt, digests, dict(choices or {}), step, cells, fraction, hints, nudges)


def question_source(question: Question) -> str:
    """The Python source of a :class:`Question`, to paste into :data:`QUESTIONS` (one field a line)."""
    def block(items: list[str], indent: str) -> str:
        return "(\n" + "".join(f"{indent}    {item},\n" for item in items) + f"{indent})"

    fields = [f"id={question.id!r}", f"kind={question.kind!r}", f"salt={question.salt!r}",
              "digests=" + block([repr(d) for d in question.digests], "        ")]
    if question.choices:
        fields.append("choices={" + "".join(f"\n            {k!r}: {v!r}," for k, v in question.choices.items())
                      + "\n        }")
    if question.kind == "number":
        fields += [f"step={question.step!r}", f"cells={question.cells!r}", f"fraction={question.fraction!r}"]
    if question.hints:
        fields.append("hints=" + block([repr(h) for h in question.hints], "        "))
    if question.nudges:
        fields.append("nudges=" + block([repr(n) for n in question.nudges], "        "))
    return f"    {question.id!r}: Question(\n" + "".join(f"        {f},\n" for f in fields) + "    ),"


def main(argv: list[str] | None = None) -> None:
    """``python -m mi_course.embeddings.answers P9 number 0.31 --step 0.01 --cells 2 --fraction``"""
    parser = argparse.ArgumentParser(description="Print the salted-hash entry of a new puzzle answer.")
    parser.add_argument("question_id")
    parser.add_argument("kind", choices=("choice", "text", "number"))
    parser.add_argument("answers", nargs="+", help="every accepted form (a choice: the letter, then phrasings)")
    parser.add_argument("--step", type=float, default=0.0)
    parser.add_argument("--cells", type=int, default=0)
    parser.add_argument("--fraction", action="store_true")
    parser.add_argument("--wrong", action="append", default=[], metavar="ANSWER=NUDGE")
    args = parser.parse_args(argv)
    wrong = dict(item.split("=", 1) for item in args.wrong)
    print(question_source(make_question(args.question_id, args.kind, args.answers, wrong, step=args.step,
                                        cells=args.cells, fraction=args.fraction)))
    print("# now add choices=..., hints=(...) by hand; the answer itself goes in the solution notebook only.")


# --- the questions ------------------------------------------------------------------------------
# Generated with make_question; the answers are in solutions/puzzles/, not here.

QUESTIONS: dict[str, Question] = {
    'P1': Question(
        id='P1',
        kind='choice',
        salt='P1:98d3e98a4f7e65a7',
        digests=(
            '93f962cfa46d06a865421d86',
            '6c6609d8cac9e49900b5d404',
            '44a12cf06742e82b237b7321',
            'a9c1e76d354ef060102936ed',
            '928d85b9b163cf356f6db3bf',
            'b3c400fe1dd7f87247c01f25',
        ),
        choices={
            'a': 'They were initialised to the same vector: the recipe gives tokens it never sees one shared starting row, and training leaves rows it never uses where they started.',
            'b': 'They never appear as inputs, so their only gradient comes through the tied unembedding: lower their logit everywhere. That gradient points the same way for all of them, so they all grow along one shared direction that swamps what is left of their random initialisation.',
            'c': 'Weight decay is the only force on rows that are never used: it shrinks them towards zero, and once vectors are that tiny their cosines are dominated by round-off and come out near 1.',
            'd': 'The tokenizer maps all of them to one id (<unk>), so the model only ever updates a single shared row and the 60 rows we read are copies of it.',
            'e': "LayerNorm removes each vector's mean and rescales it, which makes the embeddings of rare words nearly parallel; the used words escape this because their gradients keep them apart.",
        },
        hints=(
            'Compare a freshly initialised model (`training.native_model(training.RECIPES[model])`) with the trained one: when did the similarity appear?',
            'An unused word is never an input. Through which matrix can the loss still reach its embedding row? (The zoo ties `W_U = W_E.T`.)',
            'At every position the softmax gives each unused word a small probability, and training pushes it down. Which direction does that push the row in, and does it depend on which unused word it is?',
        ),
        nudges=(
            ('001a1ab2c128bf22f8da6812', 'Check it rather than assume it: build a freshly initialised model with the recipe (`training.native_model`) and measure the same cosine there.'),
            ('c3cc62bec1ab48f03ad60ebf', 'Look at their norms: are the unused embeddings smaller than the used ones?'),
            ('acda4243702fb6316d357b0d', 'Their ids are all different (`world.unused_token_ids()`), and `W_E` has a separate row for each.'),
            ('03964c13afaa8521c52547a9', "LayerNorm acts on the residual stream, not on the rows of `W_E`; and the used words' cosine is near 0."),
        ),
    ),
    'P1.centre': Question(
        id='P1.centre',
        kind='number',
        salt='P1.centre:37868fb5c6d22b2b',
        digests=(
            '6e01133820759e622b07ef2d',
        ),
        step=0.01,
        cells=2,
        fraction=False,
        hints=(
            '`centre(E[used], reference=E)` subtracts the mean of all rows.',
            "Then `mean_pairwise_cosine` of the result. Compare with centring on the used words' own mean: why do the two differ?",
        ),
        nudges=(
            ('541535dd1e36dbac03da15cc', "That is the used words' cosine before centring. Subtract the mean of all rows of W_E first."),
            ('31d81f1e120987aff002702d', 'Close to zero is what you get when you subtract the mean of the *used* words. The question subtracts the mean of all rows of W_E, unused words included.'),
            ('f9fda5455dc1d31d9e6e89d5', 'That is the unused words. The question asks about the used words after centring.'),
        ),
    ),
    'P2': Question(
        id='P2',
        kind='number',
        salt='P2:c9645f97c67d78d0',
        digests=(
            '802bbd5f2f87e8117d702f73',
        ),
        step=0.01,
        cells=2,
        fraction=True,
        hints=(
            'For pair i: the relation vector is the mean of the other 37 differences; `fraction_explained(d_i, r)`.',
            '`held_out_explained(A, B)` does the leave-one-out loop for you; average its first output over the 38 pairs.',
        ),
        nudges=(
            ('50ce3788e4d9aed8d86b0b35', 'That is what a random direction explains (about 1/d_model). The question asks for the relation vector.'),
            ('7d1ed4879f74dddb1d05103c', 'That is the male -> female relation. The question asks about country -> capital.'),
            ('fddf7ad5018ef72afabae2d4', 'That is in the residual stream after block 0. The question asks about the embeddings.'),
            ('c1958b406d71c4c4cdb95d09', 'That is in the residual stream after the last block. The question asks about the embeddings.'),
            ('09e9d22f3bd4188a15e7137b', 'Is that the square root? The question asks for the fraction of the squared norm: (d · r̂)² / |d|².'),
        ),
    ),
    'P2.last_layer': Question(
        id='P2.last_layer',
        kind='choice',
        salt='P2.last_layer:3e75d219619f84eb',
        digests=(
            'b3d04edd62d75d9c1984e886',
            '5e0a26fbbf4aad290013c614',
            'a19f3972662b2b3885d61f83',
            'a55aa9f2ebd0130c1a8c59cc',
            '7051ecb44c2a0dc5a4ee76d3',
        ),
        choices={
            'a': 'The relation vector is estimated from too few pairs at the last layer, where the vectors are large and noisy: with more pairs the analogy would work again.',
            'b': "At the last layer a lone word's vector mostly says what kind of word it is (a country or a capital, and so what comes next), and hardly which one: every capital looks alike, so the relation explains nearly all of a pair's difference and there is no identity left to land on.",
            'c': "The last layer's vectors are so small that cosine similarity between them is dominated by numerical noise, so the nearest neighbour is close to random.",
            'd': 'An analogy only works in a space where words are read out by the unembedding; the residual stream has to be multiplied by W_U first, and then Nairobi would come out on top.',
        },
        hints=(
            "Compute the mean pairwise cosine of the 38 capitals' vectors after block 2, centred on the used words.",
        ),
        nudges=(
            ('b012e4460a68a1d51fab1f8f', "It is the same code at every layer. Look at what the capitals' vectors look like there instead."),
            ('3df9f1b1b26005885f83acd4', 'Look at their norms after block 2: they are larger, not smaller.'),
            ('fff62aded19fbc8af668bfbd', 'The analogy here is a nearest neighbour among the same vectors; no unembedding is involved.'),
        ),
    ),
    'P3': Question(
        id='P3',
        kind='choice',
        salt='P3:e57553b4214574f7',
        digests=(
            'f90bf59273a82c995b5e216c',
            '6f4ff9f02af0b9f16d9ea858',
            'dc04bb3a400ed258bf217c00',
            'e14e018e52007be48957bc3f',
            '3b04b4eb9f4df8da25f66167',
            '31d9038f98e3a2676aa66c86',
            '20b28c9daea26032d5fbecc7',
            '770f594a9674a5d3b29ed1e0',
            '9040e8fae4abbe12b69ec732',
        ),
        choices={
            'a': 'the embeddings (token + position embedding, before block 0)',
            'b': "block 0's attention layer (blocks.0.hook_resid_mid)",
            'c': "block 0's MLP (blocks.0.hook_resid_post, not yet resid_mid)",
            'd': 'block 1',
            'e': 'block 2',
        },
        hints=(
            "`probe_layers` fits one probe per place; compare them on the group 'hard', where neither absolute position nor the word itself gives the answer.",
            "Between the embedding and block 0's output there are two steps: the attention layer, then the MLP. Which of them brings the gain?",
        ),
        nudges=(
            ('1cdfba1c597d83911f208df9', "The embeddings do well on the easy tokens. Score the probes on the hard tokens only (not sentence-initial, not in a document's first sentence): where is the first jump?"),
            ('ebb45d6204e928b98b0fdf67', 'Probe between the attention layer and the MLP too: `blocks.0.hook_resid_mid`.'),
            ('9e89eba7f14f4bc947de4e3e', 'Look earlier: does the probe after block 0 already do as well?'),
            ('6287e34a0b8c29848e2c38fe', 'Look earlier: does the probe after block 0 already do as well?'),
        ),
    ),
    'P3.confound': Question(
        id='P3.confound',
        kind='choice',
        salt='P3.confound:a5a115a4f56de649',
        digests=(
            'a4be093ba2733b1ff95a9dac',
            '049c974fbf3ad439af12db5e',
            '2053b877b9f20c2a2717f1d6',
            '46740a715b625eb379975c6f',
            'c468e107e680394d2d4e6144',
            'f19fbb2a0e927b365faaf186',
            '71e9e4fc0dd8ca874110aa2e',
        ),
        choices={
            'a': 'the position embedding alone (hook_pos_embed)',
            'b': 'the token embedding alone (hook_embed)',
            'c': 'the current word and the one before it (context_features with k = 2)',
            'd': 'the current word and the two before it (k = 3)',
            'e': "none of them: block 0's attention does better than any local context, so it must be counting",
        },
        hints=(
            '`E = model.W_E.detach().cpu()`, then for each k: `fit_probe(context_features(E, train.tokens, k)[mask], labels)` and `probe_accuracy(..., context_features(E, test.tokens, k), test)`.',
            "Compare each baseline's accuracy on the group 'hard' with the probe on `blocks.0.hook_resid_mid`; the answer is the smallest input that reaches it.",
        ),
        nudges=(
            ('b0158cf013665dc4967ed5eb', 'The position embedding alone is weak on the hard tokens: `probe_layers` printed it as `hook_pos_embed`.'),
            ('31d74ccd77918155ab7dae2e', "The word alone is the first place you probed (`hook_embed`); on the hard tokens block 0's attention beats it clearly. Give the probe the word before as well."),
            ('b19a0aed1729aefc7d59ea01', 'That one does it, but is it the simplest? Try a smaller context.'),
            ('1b9d1f94e42b0f483f89ab04', 'Try it rather than assume it: fit a probe on `context_features(E, train.tokens, k)` for k = 1, 2, 3 and score it with `probe_accuracy`.'),
        ),
    ),
}


if __name__ == "__main__":
    main()
