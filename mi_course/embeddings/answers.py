"""Checking a puzzle's answer without storing it: salted hashes, hints, nudges, progress.

    >>> check_answer("P1", "b")          # ✅ or ❌ with a message that never gives the answer away
    >>> hint("P1")                       # the next hint, one more per call

**What is stored.** For each question: a random salt, and the SHA-256 digests of ``salt | form`` for every
accepted *normalised* form of the answer. Known answers (for a choice or a place: every option, the right one
too) are stored the same way, each with a nudge that is itself sealed: XOR-ed with a key stream drawn from
``salt | form`` (:func:`seal`), so it can be read only by giving that answer. A wrong answer shows its nudge;
the right one shows its nudge as a follow-up after the solve. Reading this file tells you which question takes
a letter, a text or a number, never which answer, and no nudge says which option it belongs to.

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
import base64
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
    nudges: tuple[tuple[str, str], ...] = ()   # (nudge_key of a known answer, its sealed nudge: see seal())

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


def nudge_key(salt: str, form: str) -> str:
    """The digest a nudge is stored under: not the answer's own digest, so the right option's nudge is not marked."""
    return digest(salt, f"nudge|{form}")


def _key_stream(salt: str, form: str, n: int) -> bytes:
    """``n`` bytes of SHA-256(salt | nudge | form | block) blocks: the key that seals one answer's nudge."""
    blocks = (hashlib.sha256(f"{salt}|nudge|{form}|{i}".encode()).digest() for i in range(n // 32 + 1))
    return b"".join(blocks)[:n]


def seal(salt: str, form: str, text: str) -> str:
    """A nudge as stored: ``text`` XOR-ed with the key of ``form`` (a normalised answer), in URL-safe base64."""
    data = text.encode()
    return base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(data, _key_stream(salt, form, len(data))))).decode()


def unseal(salt: str, form: str, sealed: str) -> str:
    """The nudge that :func:`seal` stored for ``form`` (garbage for any other form)."""
    data = base64.urlsafe_b64decode(sealed.encode())
    return bytes(a ^ b for a, b in zip(data, _key_stream(salt, form, len(data)))).decode(errors="replace")


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
    """The normalised forms an answer may match (a neighbourhood of grid cells for numbers); None if unreadable."""
    if question.kind == "number":
        value = parse_number(answer, question.fraction)
        if value is None:
            return None
        cell = round(value / question.step)
        return [str(cell + k) for k in range(-question.cells, question.cells + 1)]
    form = _choice_form(question, answer) if question.kind == "choice" else normalise_text(answer)
    return None if not form else [form]


def _nudge(question: Question, forms: list[str]) -> str | None:
    """The unsealed nudge stored for the first of ``forms`` that has one, or None."""
    stored = dict(question.nudges)
    for form in forms:
        if nudge_key(question.salt, form) in stored:
            return unseal(question.salt, form, stored[nudge_key(question.salt, form)])
    return None


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
    forms = _candidates(question, answer)
    if forms is None:
        return Verdict(question_id, "unreadable", f"I could not read {answer!r}. {_form_help(question)}")
    right = [f for f in forms if digest(question.salt, f) in question.digests]
    if right:
        what = "Bonus question solved" if "." in question_id else "Puzzle solved"
        follow_up = _nudge(question, right)
        return Verdict(question_id, "solved", f"{what}, and recorded in your progress file."
                       + (f" {follow_up}" if follow_up else ""))
    nudge = _nudge(question, forms)
    if nudge is not None:
        return Verdict(question_id, "wrong", nudge)
    more = f" Stuck? hint({question_id!r}) gives a hint." if question.hints else ""
    return Verdict(question_id, "wrong", f"That is not it.{more}")


def check_answer(question_id: str, answer: Any | Callable[[], Any]) -> Verdict:
    """Check an answer (a value, or a function that returns it); record the attempt and a solve in the progress file."""
    verdict = evaluate(question_id, answer)
    if verdict.status != "missing":                   # an empty answer cell is not an attempt
        progress.record_attempt(question_id, bool(verdict))
    return verdict


def hint(question_id: str, number: int | None = None) -> str:
    """The next hint for a question (or hint ``number``, from 1). Hints never state the answer."""
    question = _question(question_id)
    if not question.hints:
        return f"[{question_id}] No hints for this one."
    shown = number if number is not None else _HINTS_SHOWN.get(question_id, 0) + 1
    shown = max(1, min(shown, len(question.hints)))
    _HINTS_SHOWN[question_id] = shown
    progress.record_hint(question_id, shown)
    text = f"[{question_id}] Hint {shown}/{len(question.hints)}: {question.hints[shown - 1]}"
    print(text)
    return text


# --- for instructors: making an entry ----------------------------------------------------------

def _form(kind: str, value: Any, step: float, fraction: bool) -> str:
    """The normalised form an instructor's answer is stored under (a number: its grid cell)."""
    if kind == "number":
        number = parse_number(value, fraction)
        if number is None:
            raise ValueError(f"not a number: {value!r}")
        return str(round(number / step))
    return normalise_text(value)


def make_question(question_id: str, kind: str, answers: list[Any], wrong: dict[Any, str] | None = None,
                  choices: dict[str, str] | None = None, step: float = 0.0, cells: int = 0,
                  fraction: bool = False, hints: tuple[str, ...] = (), salt: str | None = None) -> Question:
    """A :class:`Question` for new answers, with a fresh salt. ``answers``: every accepted form (for a
    choice: the letter and any extra phrasings; for a number: the value); ``wrong``: known answer -> the
    nudge to show, sealed (:func:`seal`). Give a choice's every option a nudge, the right one too (shown as a
    follow-up after the solve), so that no option stands out as the one without."""
    if kind not in ("choice", "text", "number"):
        raise ValueError("kind is 'choice', 'text' or 'number'")
    if kind == "number" and step <= 0:
        raise ValueError("a number needs a grid step > 0")
    salt = salt or f"{question_id}:{secrets.token_hex(8)}"
    digests = tuple(dict.fromkeys(digest(salt, _form(kind, a, step, fraction)) for a in answers))
    forms = {_form(kind, w, step, fraction): msg for w, msg in (wrong or {}).items()}
    nudges = tuple((nudge_key(salt, form), seal(salt, form, msg)) for form, msg in forms.items())
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
        kind='number',
        salt='P1:49ba6502b9f0d5b3',
        digests=(
            'a8facba59c8cd731064e7d95',
        ),
        step=0.01,
        cells=2,
        fraction=False,
        hints=(
            'Both models tie W_U to W_E in training, yet as loaded their W_U and W_E differ. Load each model with `processed=False` too and compare: what did the loader do to W_U?',
            'Processing subtracts a mean. Which rows of W_E weigh most in a mean over the whole vocabulary, and how long are they in each model?',
            "For the counterfactual, start from the unprocessed weights, rescale the rows in question, then redo the loader's steps in the same order.",
        ),
        nudges=(
            ('36282c56dc2d87ead56fb965', 'iF5_kxhuVx47Gd0x5d-u1ZPg-LvHNvHQTpJ3LE5gO9_M5h20JfaWfC5MbazWBW9kX_HOMUOgUXuJt1sHXim7zctA9Js3haxy-_aJsNHGj1h6mJId770pmtnFR64DdPmilq0dm_LqnNEuu9SitEjkYexayqOTNpN2TeFVzVwoGe9lSAaLgmcw0zHRIYtMxEX-2KpmFWHZJm2AqfgF5YsgkuaTK5G08n-Eol4dD14zSO5QIpPDhSS-'),
            ('5d0cbea35acb73fbf5a9c655', 'wSLmUR4990cmUAuxbVM2Xdn7-_h617Z8lkSM1eVyJipsxn8OHr6i5DVDUJ_W46V2BjMFc-b5yA8Tshf3s49oF2aROVCmqUKZIQYK_TLD1ai9eVbqzG-i386Hw8YTGlceNEy-CIrHkfcGfzy42EOfvWBzeb8s7yF8G-HPVzaKGz2gyqm1UB_lsVPIq2ZxjMNRFZgFHSK2ZOMMTGj0sIvWWS3KgeBROkrqmx0hzhBjgKeisxGgrl5iqb22Gg=='),
            ('c80240b5f6f9c5d1905df05e', '4jKUWiy6IxBOyi_VN5Bb18h__zqQl1NVNCdSPfGV1HnjqgK2EqZE5dUPvnufDWgIqT07fihNIMG7NNVprE4SXe564jAeEMn5nwZGCT06qydM01RkdsEsPx2nXD0wcuMcsEJXUPAJznsd3XRaFqN8lVsoi1iKhqH4Cx0uYB5Pm8rJIK4QZOnTjTKzNK0QQujddLoRckan86s='),
            ('2e3269a5bc55f11a00c8b0d1', 'uyHurGOoleKAPmlwIuz5i5Z5u60l-b-yBaxvl_lzTnydBrWwj08Jckl8T35lJZmT71y2As9C2Ji1tWwO4IQO20jgTFLkLwR8dQ7riINY3LPIbcva_z-a5ZPd0tq0gERmNLOuqbrDnVtSn68eN17MMIRYnFu7xnKJrT413x0G_A1b1HdjYB8Xeaa01GAaroUfhfU='),
            ('96010ce068813abf700fe235', 'lIpd6hLPsRIryCnZfc6GB7UCpMEIbEzVxMn3h0lHRjeRfnssvWFid9d1rMjdBz17pSwegGzDmoH3NtgalX-B7rYd1DrYGSalxjegMq5jAq8FNupRTL25YAR1GG9OB7lHVxG476jTD2eVpZKOD9uvAdUU3dpkJq4Dz1TjLa8GtQ=='),
        ),
    ),
    'P1.push': Question(
        id='P1.push',
        kind='number',
        salt='P1.push:8a74828fbeafe806',
        digests=(
            '8136924acb454c915c1cfe29',
        ),
        step=0.01,
        cells=3,
        fraction=False,
        hints=(
            'An unused word is never an input. Through which matrix can the loss still reach its row? (The zoo ties `W_U = W_E.T`.)',
            "Write the gradient of the cross-entropy with respect to a word's unembedding column when that word is never the target. Along which vector does it point, and does that depend on which unused word it is?",
            'Average that vector over the positions of some held-out text (`training.held_out_tokens`).',
        ),
        nudges=(
            ('0208c0544b7a8e9814be2677', '1HYAezR-dFU0LhHCy4osfhgZOadTVa-Dk-ffSvsrjSp4iGt494JSVR5bMiPjFkaE5xA42T5Y-M-hXnL7gbQMzxRPscK4uYsdl0Km8-yls7HvlBJxucd7vhPhNt_46pUPNe6wE2Ikt6zOKG6l6_IMlqBDCg=='),
            ('6598c832712f49acf8919a90', 'iQpB8hJ9tg-On2Rj7l3c-goZ9LwVWpW2VJHbPxJg42YCALzi_bDYaNCbO4E2zI0iPbN6YhvKNrcyikPV0psF7weWtLZDbu7O8PH6GcPKbPecScCoAub0Kx4j7ZcAJaPVTqn9s3kn7I7ywZ4u700e_y7gPKGafh34fRjdUqpCwi7mG-eW6RL6B1ZHsXtYY56s7APrerHBLWPAEgua2wQo'),
            ('3a754d15e7b6ffc0ed5bd2ce', 'wUJiwLbYdM4hgO3RbDucF5go-TkzLl-fBEYVvNV8DZrNfG45jU-E_V7QuQWqK_UGgixOvLLWamFqC4xqCuUHmPH4lR5K3MoQ2QNAPIJS09juHgqJ76HmId16HQ23NfXsTtvB'),
            ('6b0a72d35d61cf5f01dc0500', '88r0C2uuWe_z6A-Vjk6mMV_jwKMR0Z14c-TFoOo1d9qGNbFOrl5GEuyx7v0ZiWiW7nL2mrIJhKyRmSk_OzpHAVwX6xnBIaJ4D646tn7ApZSbMRrh8rv61tNswpHXcizn9Y3msIbjBaf8'),
            ('1b7576a5212d1a0538b54f72', 'mk7MB7-rZ9NsnwTEwbPEuDFJfaxL5EfAf_KxZN_nZRPoZWwICXu425odWY1PJn4bXsf-WXaBLxQ81OZ4AzDsyEcgBcl1dwcZQVGio-HJbrpUObe304LFZewJxXTqP0ijo_Chv2OHnQVEsBL513C58HkwNm40vg2x4Ho='),
        ),
    ),
    'P2': Question(
        id='P2',
        kind='number',
        salt='P2:401036993ef51126',
        digests=(
            '92ede90fd54a12f96db37ac8',
        ),
        step=0.01,
        cells=2,
        fraction=True,
        hints=(
            'For pair i: the relation vector is the mean of the other 37 differences; `fraction_explained(d_i, r)`.',
            'Leave one pair out at a time: 38 relation vectors, each from 37 pairs, and 38 fractions to average. Does a random direction do as well?',
        ),
        nudges=(
            ('9a7592fb2f7207ae89232c35', '_mcorzUrab7qmn-zA_ykt1D8L7yT1BIkriZu_k57YH6vX0T86FzPpDThT_zCBpbw7liQaK61bLo1c9HkkuQZLkhe9Y_ux54NCBwJgST0kxM70whn6BcVdp8OJ0EvvmQnzUWHGYWm'),
            ('e8826d227cce20e3a1fe087b', 'PW8UKaVAYpIxZvMQ_Tv0-PAIAS5Vq4rznCRmwBwjQ3F6NtQsl1WngAqWWDryd7WNl2V1Tf12z6u3zWmkNltqZczb66pg-P7LTs3cBHob2NHA6R68UR3ZfZG5h_FjCyP6kP8o5DbeJhTCMQ=='),
            ('f746c8567e7ee9f0065c034a', 'gR2ZoH4JW6OyQLnIKjij7N-o4vOSTqqFB8Fl6PL5aVo6c2Ic802Gu_PPtYgjZX7xjyC0lTvH6zSm-RG4_Ep-kK2XKFtVnRCQpqMROFUtOuwaaaZYdw=='),
            ('d6357cd8b50f396a56a9a3d5', 'SW9Yx7Y0LxGpu-3dFlWPOF5ceQ-bJuby66ntlBCQTPdWNTR_ad7rGc2MOlG6gcsisXP0p59_qVJIMjaPXVKfKFZ8MUYz8Qi_5OKcTsgfrVDleFKvJhT7bOWa82o='),
            ('b79b93dce7a4c4ddedc87446', 'gCVLS0N-ctO4DM-XHrPeEt63i4-UtAepU7I39KOHM7gamyFn4kVpgzEqTK4ZyxR60A5RhIp5UasOpwHqoITVPsIqZzCG4RKH8oj5jYhO4Uj_tM_x_mB3tMjAfSXdJyOYkof-2aUM'),
        ),
    ),
    'P2.length': Question(
        id='P2.length',
        kind='number',
        salt='P2.length:49835cd65a218f68',
        digests=(
            '9584c0693568f7dbc98f6f5d',
        ),
        step=0.01,
        cells=4,
        fraction=False,
        hints=(
            'Ridge regression has a closed form: `w = solve(XᵀX + λI, Xᵀy)` on centred X and y. Fit on one half, score R² on the other.',
            'Try penalties over several orders of magnitude: too small fits noise, too large predicts the mean.',
        ),
        nudges=(
            ('bf6d41f01acdacc93e857897', 'MYFVfqA8vNp47xGU8lj3iynQa4lF3SLRxWSmeNqUTjkl666E1LIwLWsCe8mUlcRU8CQKGtfJ0fLAX5iJU5eqV5vVK6rbiAGzeMir9IfUumfhRzSKLiBMEmN138eh4uzLYG5htETFOylyv7bUuCFbJ4IO0sEWurogwjwXn6qdtlYq1CmPUjXeLfTiYpabyyw='),
            ('b224db8420275ea2afe472cd', 'oXftneTatATKtbwp1u5ilYRqwRiI1NP2gDD4H6VPU5COdBa2HgY05h64vF_f-_fkfWGxXpUUXW3MRat45K_llRsTjGz9cDdBD0T92-ktN8QvAzAH0h6PgWPXe9Z5tSjmg8tC5rcMNTtRUJwyuNQ5GjVdzyzdQV-ideW31P6NuaPUs-UYC42BNXU1fLhrDBQ='),
            ('ceec545e7e98ca0d8f8d0207', 'TgGyA-PKuzh8-Paq1isfKjLVzM-XP9tVLExACA270Qfd0bFi-O9Ql556lly7VMQSputgu8fs36i3I93TuZ5TJemVuTzwPq7IOXJlzaT5yad5yCE8XDrhGZOsTBEdNuhiecJnvwmeAafOZcl0QHyTgD8RG6Aj8ZlmJblFkzI5gkYTQ4AgfsRqeM1wpwh0jGwltLGv_NEe-V8_lgvKkaTJ7w3jVM9_wUEtNGmfgA=='),
            ('7d97ae6e094dfa5755470a7e', 'Y0tpmN8zEfrjKd9szsvAcKA38Q3CtNIepXkyzU73mjSzVppFikbAP7Ml7jj5IR_ARIMWQsiOA1z3D8U3EaEVanStEzLvCsb7sOro6nwcZBLEEA9ilWdkVoOdM8bqbMR1Ff2d0xXKici48cxWnoSgOMonG9tU_cMrQ9YD2sQ9lcVSDtC9HI-fmivFrFoFLDZJK1gOHMKXfza7sw94p8M2'),
            ('47580ba4a381005e3ae2e088', 'qrp_XXgutKW3M6ibBopivLCjG3S4oiW0WtbJcbE7U-UriViCdCJER7CLmIKByhBCPXiznW3rcbdzs64In5Oo9DlQSWse9BQdnGkzsGRR8t1dQLrQIc65HjIAvBoOCH5uXhLBy1AmO6u0TAmWTrH_YtKTr_qLgp0Ftvdkiarzppa8ZIb55Yp1517xQ0SvCo1zAJ4kkrdNL-WBDjHJYiO-aeR1Rl0Fv3HP1wc8b4ysxqzYCC2U_4R-jRZTPF_v1qw='),
        ),
    ),
    'P2.last_layer': Question(
        id='P2.last_layer',
        kind='choice',
        salt='P2.last_layer:621f73ddf2113acb',
        digests=(
            '169ff0c9c90374532e5680b1',
        ),
        choices={
            'a': "A shared direction swamps every cosine after the last block: one huge common component decides the nearest neighbour. Centre on the used words' mean and the analogy works again.",
            'b': 'The last residual is read through ln_final: without that LayerNorm each word keeps its own offset and scale, and the cosines compare the wrong things. Apply it and the analogy works again.',
            'c': "There a lone word's vector mostly says what kind of word it is (and so what comes next), hardly which one: every capital looks alike, and no identity is left to land on.",
            'd': 'An analogy only works where words are read out by the unembedding: the residual stream must be multiplied by W_U first, and then Nairobi would come out on top.',
        },
        hints=(
            'Every option predicts what a one-line test would show (centring, ln_final, W_U). Run the tests: which of them bring the analogies back?',
            'If no fix brings them back, look at the capitals themselves after the last block: how different are they from one another?',
        ),
        nudges=(
            ('b1fca39598a727a09a7a57c7', 'nOp9s9ADx8PwltIrZnU7pDgQ_i_ZwL3yfsVJn7M-0ayWm9bJJKXS9LGES3513k-eZNb0tv-7Wv8vB0-qE7ulRC0g0XIbUdeX4Mw5DVknhQML01Q95dCscVg0ydVNOz0HbY21oy1Uv-kK5GumOAcxRZ-VYcZC_XQUmdlByY3a5I8Gd2sRsdeFKj_1ejtLihc='),
            ('6a30914ff74e0517773fd8a8', 'dfazO3-ImxEXsCqpK5Rj-BLV_aUbxK_XezQbWlQ8WjFs8Y-ss21h86oqUuxBpAoUmDvuNQYynhxT1BgbQhO3t50xil9TiY-cuVPhtGPhChR1G5nTVR-XdFvrTjmmzjGVfkUtI8KGssrja2dke4pqYMP4ZNp3L8n4i440'),
            ('3118814df87abfea6930691a', 'dfmMH0XAMK_-kyVQ5jA9F0_8r8n4baCt1JRoS2aR-U_MoeXi8g3GspRmjs_to5AH0s9xnX71LgHEMi4fLlQFD1lLOxf9m9Noks2yY98Wrenq4B6AnJwmxZLTx_4GEzWxuCaMn4dSf4KJwP-VdgC_f_R6z3WpZmfZ'),
            ('778b7eaa0b08cd33d76d29b4', 'CMp77iHnSa6gYAl587SuKA-o76d2SQ1iv9C3QrZD2j-Mf_HCzGJbPkczVsqwFnrNdEy90gXdT71SbZ5tefZbvxAemsiwmdlsJPdzMztiU7IQVcwJTgK1aOdxeURguiJ4O919F0MPsG8mBIi1d431oGMn-RcD'),
        ),
    ),
    'P3': Question(
        id='P3',
        kind='text',
        salt='P3:f6c805830ec0d2a2',
        digests=(
            '1838ca649a7a7dfc74a44203',
            '37825840574758123891eeb5',
        ),
        hints=(
            "`probe_layers` fits one probe per place; compare them on the group 'hard', where neither absolute position nor the word itself gives the answer.",
            'Read the places in the order of `hooks`: the answer is the first one whose accuracy on the hard tokens rises more than five points above the probe on `blocks.0.hook_resid_pre`.',
        ),
        nudges=(
            ('e8f970aa8e7255efc014618f', 'GXeelJKBiHxLebldbXn4tT1QLEuS8hyaxL9wXHvYhFcoXo45PMxMmF-RvWyacB5YZIbwnwWDeAntzvRfQ2dHOW4zGLO2QpceqO3YA6OHKSYiqy22pJKQRkqaUd7bg3VCZ1CVWpavbyl4jPYxplm3'),
            ('a5a4b34845e08db3f51c7ef3', 'vHZh4LrIi5fORLD6XSlQDekA-eDCpBUsv0yNwfTw-Ho_t9EPkngIYbHUreGAHe8e2b3ZlUWn-CwXUI1KEj6dK3f_cO2nsm5bOvNrKZHlxy4mgg9F-Is6BvSpsVlc8wEwUSLMClRw8fOGolAHPO8MmhMx'),
            ('e14aed6e8d2c4cfa019f8fc4', '6qctWauzdtBs0oBhNzhBLuvJXMVEPfg50xc5iPrtAqa5MTG62psjJ72cUh4zMKnGZol0iHJwxOcusSoNyz_gGZ9K54CTqeZa9nrNColUjy0jBxY_OSroDZoRNXyuvHvGGxBYKsQA96XTHr5c87nNVNX56Hn758kUdLSkR89f'),
            ('890f1640f6b440dc43e2cb72', 'ZQBbMiVQTYiCSrgUpzk7oN2pnRD-Mo_lW3OZcg5nMyBLAz_Gb6B69PJLXnKTWvEIQHA9evEaw0VpDDgfWdPoFkdN0lNsjt_KRq5P1d4='),
            ('10b3fb328ac54434c3c4266b', '8A4W6CbwtwTLk1UX5kIsbuXXxh21x3tJzQK-2emghQsDIlpnOi17t5f_bvoWs88Kr4W2idKQki-Lxs7HqHLx04IlkkMH4laBi4Pc71FktsqRvZm_AvULLD1z1aA5uqWBnizqS8izq3cZhICeZ9I6cvY9o-Gxnw=='),
            ('0c8142ecb05c2a0b029a6f48', '83P6mJD2_3_2zYtLoLxvLoseMp7lXmieC5PBoyMYQpcVYKP4dIVaXlS_ejqQm07JmafOSYNHZgQtn0Mg9f5RZF_snQZsy9ziawJ55ip1qfGsSgw9F7yjivjC-y85H9iFkH2kx973-UKGYvYrdw7DgPK9ibbuxQ=='),
            ('a2f193b24987b1582130a841', 'yPXa1edIRaj168RrUTw9CYGFlr0VHnYrEhrgz_fYk6eOv6wzLQPJXUT8iSGHqCaBWcl8BFQrX6QKGCoSMsFhrAQLxZ19SolZ0rLfxHGa1Zy0qqwrq-jeeI4Gp7DxmvMAjJ-kzBKix5Kbqd4W4QPLdYJhoraQpw=='),
            ('333fc2dca0b6193ce4942fa6', 'l6L_Bvex32N1eHpO38T4FYI5HRBqA4PKvR_HY5R7sdKY3oJPaPp9XeD00AZVnk84iayxBcP6bnZTUrH0mfqzcPUYc6wyuWONkQP_kF51zxx1OI96PmdjsGIqFSn1PceznNcPpLQeh_Xq9GrJjov4XckpgBFKGA=='),
            ('62fbc0a93f21bbd9a0f8ba38', 'Tp1LDC6Gg6Y0lOQlOqq1eGbjIDKrxa9sBKym8rGoOZI2rUtk5AnT9Baa-AUcfrKDDiOdMftWJrDAQQdWJuqPeK_i48u-HfKucm5R1qQdkEyYPvOJrxjB1pCIkl3CPVKGW1hywg02iT3607QcDlsnz0BozaHeUA=='),
            ('51fa157e657ceadf5fdaf59d', '1j2UCLg0FQtFLl96n7SXGsRXvvcMZsD9Pa5XUm6axpG1YZ_L-3fb7djndAlos5NxLVrNVCrwo_wH99McF87LYtmXs-dTmDt16PkIgo_rzSmV6GJxZ5QmbXmteY6Nm6ryORLFd5nLU7Jzz3SCgoKGg2xqXcMKzzVa_PEgWS3m'),
            ('c2eaef5ba82fe71eba2c3f06', 'LYtWz7BYm324z-0yXjaM09NP7fO_jvksnYSoW6XMQGSPD77uDUV41147Sa_km5ikwMqi9A6L__zQ8EMnG9mEe7IO16v3eZFMXOANa1k='),
            ('2046bb04f14a56e5b29278d8', 'tOTl2cS6Ig0b_dOVJJgR4qkc7veAgLXXllE00DreD1N5LbVetxUemqvZYujQZT9XvrhOyQzemb7Za7MjClFhZjY06F2VeM7s9xsoPk4RsGF8CjPxhs9X-8Y8Vi1wPqm_t2vVtl-D4BLwZiOhXojavp-Lqfa_8g=='),
            ('7311a709d55aeaed22590cfb', 'r5kkZ-yr__74Trucco9kk4BfmdaqfDwgLQM_wNLkQ_jIq5f0xLsywOVtPkMIqSjrzE_uJ8WXIgM0_GOhvVskObzXdbsCBMZlZL_b0Gt-Tq0hLQgzKC4K2j-t1sk-oLE06JbOtTxw4qEy1y0eKjwwxJs6Ai7Pxw=='),
            ('f712648e8656db5c2b3d1267', 'ZUpW_6wrOFFgv-SzJfQrDB6zjrD5pdK3zRzB4KYwJLpJ8aZpiBGWBZyZy5sRs_0YMik4YwIX6OHT0waQGrrRDpx04l-WVs0Mf3qFCWf_AOngFgco0DYQ5YqKsS0X4s3iJn4L6Gyu_vxPhaUTetdG62_pwozDLg=='),
            ('d40f0a06da25848d08d58447', 'XDdk9DoGDMmkkkS4zI2WblbtHNk0gPeWqrVsMpAOQ990s9BG6u-UU0ANyvEzqmYhJOS1TizFIF8UENI07e9KQPZzk-ikHobZpHawaOI4GF8OfH86LSeF1UEqxD5qFWIVQBYCg6vRb1rNbsZJyMUwdG7A5mVWzA=='),
            ('1a557e2347e7b71e55d6a197', '8TacSRvmfmx--oQPDVJQafR9q7LtAZsQo9HTCeXdHdcZFm838l4tRFFM-4M03MWBWaeYZAx5JcGnrjtPjszmABIfu9ZjyKLpEQ6Tz5YwZBytBOu-fGEuVHeHyzrmkEdLdT2DsmS87l7bsCAewibHn16GzVNdIw=='),
        ),
    ),
    'P3.confound': Question(
        id='P3.confound',
        kind='number',
        salt='P3.confound:e3e9f1ee50beef2f',
        digests=(
            '6d471ab244f7dae020cb557c',
        ),
        step=1,
        cells=0,
        fraction=False,
        hints=(
            '`E = model.W_E.detach().cpu()`, then for each k: `fit_probe(context_features(E, train.tokens, k)[mask], labels)` and `probe_accuracy(..., context_features(E, test.tokens, k), test)`.',
            "Compare each k's accuracy on the group 'hard' with the best accuracy on the hard tokens of any place in `probe_layers`; the answer is the smallest k that reaches it.",
        ),
        nudges=(
            ('d36ffabe212193a7d8b622b8', 'MwwSWQYVGu1jyE_dIIHMxbIPRuW7_mKzgl5lnrW1lFDb1PlTm7m0pNCxar5CfVAnzNuxuhdqn9XHEWi0RKPd_tUtRYEG2YvGwqewhvn-gbTKxjCONxsH2NUXdWdn7OPyIbB824UBZtWtzT-FqMWLwTeW2WezLEKm-zkktL-kTlNGyOVvOUPSAFi-Pj9ARZ1A6QdyiiOdR9Ouaw=='),
            ('a8ebf1ccabc1d891a9f5f989', '4YDSmG7cxn1hWVUcQVhLsq47Ie98UbNNvtOL83Ba74GMXylJ90dZC_l_BKKEM8EP-9vhKqoRAE7QmwtYBNchOAaIBgqhULXBjo2uxg2V0WYCTKgm7fIgYsNui1M4mRqlbgslGejx0ZrfgZhyWQTwtbCP3xDyifolxk_zb4YAchSauPk='),
            ('37bcfbf887b9fe9f258d053d', 'WosfK63fffPVEX5BW_95vdNPYzDwpOjzUgWJyAyG5xeicLwbG7ywz7mNQQdh4G63WWpoXq1oBpQM2HoNZueJtyJBJ_zSGg=='),
            ('82ce38a62b943c1d4b6be2d4', 'zD-aQvPPd3cvW8pKb6umAaJKRiVMXc_VeMNK-mpvBxmFIlu5ZhuUxCiff92BlX6cLazuObylaNToLHO8Kwp2XBtW7JF2CA=='),
        ),
    ),
    'P3.counting': Question(
        id='P3.counting',
        kind='number',
        salt='P3.counting:ea2db3379d638fbb',
        digests=(
            '1f4dbcdc672beec8c0062dea',
        ),
        step=0.1,
        cells=1,
        fraction=False,
        hints=(
            'Fit one probe per place on the random sentences (as for the main question, with `fit_probe`), predict the position of every held-out token, and keep the group the question defines.',
            "Mean absolute error: the average of |predicted position − true position| over that group, with both positions capped at 11 as the probes' labels are. Take the smallest over the places.",
        ),
        nudges=(
            ('497c6229786302564113cd28', 'DsmpBAH-xkGvSPfGLZmdsQQkTvMdU60et05-jCRNNyH6L4lFGQTR-_YcvxN8OLOeW0hZH0X-4awdMjZMDVAx2O6UahrYzwrmb5IDVSDpL3FLBAkAhWcMh8uVHXIc707PN6uBhrvrNUKor_KbRtaZumKQlo8hLBNIEITWJWUQAXse'),
            ('dfb7212d8241889987c8b5d9', 's7LxHeB4osa75pf13b-iPR-BKzgbiVb1havaIpjL3ipR2ZJafPj1Us76fLUy8anlgoDB-6_JcPTKjAx6ISoeD4NxKB3adTQFgV4OFz6X7JM5anzYhhdVYDEnDl0YLbC8PNCsiNmVAN3KT16wZr-mnGNbT1jhsPfpyjhE4oHsOqSdyq4PAp-AoEkTO9gMMYOiOOTG3jQH7-RQ2UY_1hVI_31onJweRVpw'),
            ('77f9b9cfa9a3727da3348760', 'g9Wjg6pgSCiaVfhsgASJf294Ap8MJzYRqztd21He-gcEovBXlMjM7_XjpBWQlSxNgbNdUn7pyyoAkxFU-gxI9VPHTVq6OBGjYG0zzo4QIo1HM6TArO2GcGhHrIA0Vk_NGjmOX1g1CJmUnyAFkirrvfqJpyBUEuLwIW0nma6mfMJXQ2vORfi-CJA-e9awv9mufzlAWBdcpuD0KF0tBVInH9GbulKA3DSz'),
            ('de34372cabcec1c97838be07', '7XFMwS-4jZ2Aeunw2gzJPsFZqQmXOl89opCuhu8gM5CZRoUxtuI57b7UO49sabc3ERuLUnD45FRwF4Yzer3ePGdAVMxQIzp9JSxkQ9RWVdhedQgDQVBVQCtpYi0Kha42otWeBGX4SZ5tUuDD'),
            ('85c3b0a0e8f0f7f38eb70cfe', '_WUNHeZ-R8KhRySOH-Pwzs2ryyWITcIy-B7E-gD2lh2d-utUwOXwn_XFdbixxqVyclCNAwFYKXmGGJ4bGXlzZr8HHTjy_3EarxDDf9KkUvqk3hXnvgTXilrhtMNd7vS1Lwx-HHuczG0v4tyKq6gveqiaUXhvVBE5aVtTsgChui49NI8H7M4g2hNStXhp9_ULc0V_gtdJ2fmSbMwtQMXdqrojVChR4ZqzHEfIMek3z0ueCAZeQcp5l0-aTyMFEnSoeCVt'),
        ),
    ),
}


if __name__ == "__main__":
    main()
