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
        kind='choice',
        salt='P1:59e460206167f008',
        digests=(
            '96f8d7315e7d24f70629b011',
        ),
        choices={
            'a': 'They started out alike: the recipe gives every token it never sees one shared initial row, and as nothing in training touches those rows, they stay where they started.',
            'b': 'Weight decay is the only force on a row that is never used: it shrinks all 60 towards zero, and once the vectors are that tiny, round-off dominates their cosines and brings them near 1.',
            'c': 'The tokenizer maps all 60 words to one id (`<unk>`), so training only ever updates one shared row, and the 60 rows we read are copies of that single row.',
            'd': 'Through the tied unembedding: at every position training lowers their logits, and that push points the same way for all 60, so they grow along one direction that swamps their random start.',
            'e': "LayerNorm removes each vector's mean and rescales it, which pulls the embeddings of rare words towards one direction; the used words escape because their own gradients keep them apart.",
        },
        hints=(
            'Compare a freshly initialised model (`training.native_model(training.RECIPES[model])`) with the trained one: when did the similarity appear?',
            'An unused word is never an input. Through which matrix can the loss still reach its embedding row? (The zoo ties `W_U = W_E.T`.)',
            'At every position the softmax gives each unused word a small probability, and training pushes it down. Which direction does that push the row in, and does it depend on which unused word it is?',
        ),
        nudges=(
            ('a9a929d090f18d946efde07b', '2NnVu-bC0cd2Z3IvXYxoOrP8AKtqcryXyAkaEZQOgVRCJvNW4-4iK_vpS1DCXwG4CL_1G4ONiysXScQafJ4iRsWObLlMq8JCo1LFWXuaGEhBozfBEnRX7TvDMNgx_4f2qo4K2sEnauR3q3P5rIzwpObwh5ajKz-USDcR8BLFF4eCpF7JliOs2dTL0ebm3A=='),
            ('cc72a8501834a4bf203c67d6', '4eB1z_ZXLL-SyuEWNNfXr_o8UnZxESLIAEZ6lxZvAnM_v86zjxHqRCrx_UyoHZ3wOxzuXz-rVo2UdyPWnc7D0hpEraT_4uqr2hc='),
            ('5eec54e060887454f2f332cb', 'TVwiqKRot41QgbTadjDHJwy7akneZP4iu4zqdBGTFypNG_nCBJMOqqF6_JDCxp3CocuFhG5m3QUH6qOEQoQxxQkd3bzBwPRh8bG0Hqip2fj72w1anKeSEipdlOBFyY2g'),
            ('a20a003a0696eb884e5d794b', 'GSGSLT9TxnPuFX8LvT2_Qn_X2Z9iqprkLgWXjePBdyN5zPZrXg7AZOzdIQO4bQUVMLJgDF6W6JPk0auyHT69wbvDHBie7YriqcY2LBVCq8MrpX5F_7kTDACcvfF9UXzg_mmzpBjfHkcZBdZry3uibWrz3y_wyu3jcw=='),
            ('f20d7780e689ebabeeced08d', 'CdYZCmpSt6Oym00nxBPah9NgdttyV5-HJ1N72DmGd9NQ7wTSToIktgCE_XT3e9z9cK22MXi_J3Gvr3TvjEhNt-ggSnUWbvrdzxHUI1z8mx7LoNhqGx2yRT-zN_QknlimwdV62oWV'),
        ),
    ),
    'P1.centre': Question(
        id='P1.centre',
        kind='number',
        salt='P1.centre:e34d1bfb55ff7771',
        digests=(
            'ad079054b79bf2e8b2ca7fcb',
        ),
        step=0.01,
        cells=2,
        fraction=False,
        hints=(
            '`centre(E[used], reference=E)` subtracts the mean of all rows.',
            "Then `mean_pairwise_cosine` of the result. Compare with centring on the used words' own mean: why do the two differ?",
        ),
        nudges=(
            ('9c057be0de2d37a0f43eac11', 'J_1U1MgGJzlhDR2GAIB_eiCtPY7DFB5wt-IpgGw9tLJtCp67DD-mgFYpWjtiT5X3445oi8RWMCa0iisoWATV5N3gfuNcaoVogZU4mZuMlXCG3dH0DRrOtCRSPA=='),
            ('d53caad26989109c01930645', 'd57VQmxnXRfAPdsorhXWq4is7Tn-jTp8ZZ8ECuG83bhK51s9MEMUm1_5Gt96Cqt02Qif8Hr8K2bGd_qMjy1MQZ3VrUR_43Ijc4yJTb9mHFqyRWFrcihfOTCyMR5VxNynbTdwKD51aVgQNsIvcgnBmKwg-V5N_H55AIhtvvne68uQbY12Z5iKkpLfjJIg-_wqPMA9pPoEjec='),
            ('55bc015ad6a7c007f8df952b', '856hDHboNdbsR-hh3Lrc9jbXwNRPQW2y5yChanG_mBSV7B2Ahp5ELJe9KDv8Qg_hv5vB7N03n-NK0mOrtLgI9sh9hNlzjhSLmBFiQxy3yJg='),
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
            '`held_out_explained(A, B)` does the leave-one-out loop for you; average its first output over the 38 pairs.',
        ),
        nudges=(
            ('9a7592fb2f7207ae89232c35', '_mcorzUrab7qmn-zA_ykt1D8L7yT1BIkriZu_k57YH6vX0T86FzPpDThT_zCBpbw7liQaK61bLo1c9HkkuQZLkhe9Y_ux54NCBwJgST0kxM70whn6BcVdp8OJ0EvvmQnzUWHGYWm'),
            ('e8826d227cce20e3a1fe087b', 'PW8UKaVAYpIxZvMQ_Tv0-PAIAS5Vq4rznCRmwBwjQ3F6NtQsl1WngAqWWDryd7WNl2V1Tf12z6u3zWmkNltqZczb66pg-P7LTs3cBHob2NHA6R68UR3ZfZG5h_FjCyP6kP8o5DbeJhTCMQ=='),
            ('f746c8567e7ee9f0065c034a', 'gR2ZoH4JW6OyQLnIKjij7N-o4vOSTqqFB8Fl6PL5aVo6c2Ic802Gu_PPtYgjZX7xjyC0lTvH6zSm-RG4_Ep-kK2XKFtVnRCQpqMROFUtOuwaaaZYdw=='),
            ('d6357cd8b50f396a56a9a3d5', 'SW9Yx7Y0LxGpu-3dFlWPOF5ceQ-bJuby66ntlBCQTPdWNTR_ad7rGc2MOlG6gcsisXP0p59_qVJIMjaPXVKfKFZ8MUYz8Qi_5OKcTsgfrVDleFKvJhT7bOWa82o='),
            ('b79b93dce7a4c4ddedc87446', 'gCVLS0N-ctO4DM-XHrPeEt63i4-UtAepU7I39KOHM7gamyFn4kVpgzEqTK4ZyxR60A5RhIp5UasOpwHqoITVPsIqZzCG4RKH8oj5jYhO4Uj_tM_x_mB3tMjAfSXdJyOYkof-2aUM'),
        ),
    ),
    'P2.last_layer': Question(
        id='P2.last_layer',
        kind='choice',
        salt='P2.last_layer:ed48cbe104942bdb',
        digests=(
            'f7e36bb9183c3c50d7e99aab',
        ),
        choices={
            'a': 'The relation vector is estimated from too few pairs at the last layer, where the vectors are large and noisy: with more pairs, the analogy would work again.',
            'b': "The last layer's vectors are so small that numerical noise dominates the cosines between them, so the nearest neighbour of `Kenya - Spain + Madrid` is close to random.",
            'c': "There a lone word's vector mostly says what kind of word it is (and so what comes next), hardly which one: every capital looks alike, and no identity is left to land on.",
            'd': 'An analogy only works where words are read out by the unembedding: the residual stream must be multiplied by W_U first, and then Nairobi would come out on top.',
        },
        hints=(
            "Compute the mean pairwise cosine of the 38 capitals' vectors after block 2, centred on the used words.",
        ),
        nudges=(
            ('15fa6760d9145d5cecb517cb', 'ZIYsWibJrtMBjest43-QpTqa-8Es7kfrP0SWACh5pwxXgdHSdDRxlpwmq1MKdyJxgJML2nnYPMNGQPFp_SXYQAFFGBx-HY59vEhxXqD1FayHy8B4JcISjPrAECzkrfn2uvAkJlsbcpqY__8yPar8jAGskCla'),
            ('fc506c2274dd883f9ff1a9a8', 'FxdDD7i-yBuotiOJAlySDWI3UsM7bvQSSUVDqFGn-C9g5IFP0L_KGWxyckEIdlfcJxNkahAMDKxvIH8z6oSdpLTQ0FYdfFSKcrj_'),
            ('5d33ed5f020ba0d984324d37', '2UDmH3DwFVnA5qB_vpE-X3bCmVaLrwqQDxLjPwleCsH-1AQPEM5dnKfldfPD96d8QWgnQNbXDQN0EGqf_LsDwa6hdYvQQexyrybMHETnuiIKf6-nidkA2g7QLHouYHKl6rBxs-P5yo6RzDFy7JKDWwdOadCsuF71'),
            ('a964cb9a81f43386db33a493', '6x0W2PZVWlnqkx7CCI2F-r2syjNwjfM1gjnDuxy-WWaPYfr1_iBar_r8i4TDwjSfAVnZL9SeYv2Gkdkr-xMUbMWr657v0fE-g86yeoFPWbwq1KnkvfDIWZXGIQ=='),
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
}


if __name__ == "__main__":
    main()
