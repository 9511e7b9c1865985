"""The embedding puzzles: answer checks (every promised form, near misses, no leaks), the map, progress,
and the quantities each puzzle rests on, recomputed from the shipped weights.

The tests know the answers only by reading the solution notebooks' answer cells.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from mi_course import dashboard, models, progress
from mi_course.embeddings import answers, geometry, position, relations, vectors
from mi_course.embeddings.answers import QUESTIONS, check_answer, evaluate, hint, make_question
from mi_course.notebook_build import CODE_BEGIN, CODE_END
from mi_course.puzzles import PUZZLES, puzzle, question_ids
from mi_course.zoo import training, world

REPO = Path(__file__).resolve().parents[1]
CALL = re.compile(r"check_answer\(\s*['\"]([^'\"]+)['\"]")


def _solution_answers() -> dict[str, object]:
    """{question id: the value its solution's answer cell returns}, read from solutions/puzzles/."""
    found: dict[str, object] = {}
    for p in PUZZLES:
        nb = nbformat.read(REPO / "solutions" / "puzzles" / p.notebook, as_version=4)
        for cell in nb.cells:
            match = CALL.search(cell.source) if cell.cell_type == "code" else None
            if not match:
                continue
            region = cell.source.split(CODE_BEGIN, 1)[1].split(CODE_END, 1)[0]
            found[match.group(1)] = ast.literal_eval(region.strip().removeprefix("return").strip())
    return found


ANSWERS = _solution_answers()


def _forms(question_id: str, value: object) -> list[object]:
    """Every form of a correct answer that the notebooks' prose promises to accept."""
    q = QUESTIONS[question_id]
    if q.kind == "number":
        x = float(value)
        forms = [x, str(x), f" {x:.3f} ", torch.tensor(x), x + 0.015, x - 0.015, str(x).replace(".", ",")]
        if q.fraction:
            forms += [f"{100 * x:.0f}%", f"{100 * x:.1f} %", 100 * x]
        return forms
    if q.kind == "choice":
        text = str(value)
        letter = next((k for k, v in q.choices.items() if v == text), text.strip().lower())
        option = q.choices.get(letter, text)
        return [text, text.upper(), f"({text})", f" {text}. ", letter, option, option.upper(),
                "  " + option.replace(" ", "  ") + " ", option.rstrip(".") + " !"]
    return [value, str(value).upper(), f"  {value}  "]


def _near_misses(question_id: str, value: object) -> list[object]:
    q = QUESTIONS[question_id]
    if q.kind == "number":
        off = (q.cells + 2) * q.step
        return [float(value) + off, float(value) - off, -float(value), 0.0 if abs(float(value)) > off else 1.0]
    if q.kind == "choice":
        form = answers._choice_form(q, value)
        return [k for k in q.choices if k != form] + ["z", "not sure"]
    return [str(value) + " x", str(value)[:-1]]


def test_the_map_and_the_stored_questions_agree():
    assert set(QUESTIONS) == set(question_ids()) == set(ANSWERS)
    for p in PUZZLES:
        assert p.questions[0] == p.id and all(q.startswith(p.id + ".") for q in p.questions[1:])
        assert (REPO / "solutions" / "puzzles" / p.notebook).exists() and (REPO / "puzzles" / p.notebook).exists()
        assert puzzle(p.questions[-1]) is p
    assert len(PUZZLES) >= 3


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_check_accepts_every_promised_form_of_the_solution_answer(question_id):
    for form in _forms(question_id, ANSWERS[question_id]):
        assert evaluate(question_id, form), f"{question_id}: {form!r} was refused"
    assert evaluate(question_id, lambda: ANSWERS[question_id])        # a function that returns it


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_check_rejects_near_misses(question_id):
    for miss in _near_misses(question_id, ANSWERS[question_id]):
        verdict = evaluate(question_id, miss)
        assert not verdict and verdict.status in ("wrong", "unreadable"), f"{question_id}: {miss!r} was accepted"


def _answer_texts(question_id: str) -> list[str]:
    """Plain-text forms of the answer that must never be printed or stored."""
    q, value = QUESTIONS[question_id], ANSWERS[question_id]
    if q.kind == "number":
        x = float(value)
        return [f"{x:.2f}", f"{100 * x:.0f}%"] if q.fraction else [f"{x:.2f}"]
    letter = answers._choice_form(q, value)
    texts = [f"({letter})", f"answer is {letter}", f'"{letter}"', f"'{letter}'"]
    return texts + ([q.choices[letter]] if letter in q.choices else [str(value)])


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_no_message_or_hint_reveals_the_answer(question_id):
    q = QUESTIONS[question_id]
    tries = list(q.choices) + ["", None, "nonsense"] if q.kind == "choice" else \
        [i / 100 for i in range(-10, 111, 3)] + ["", None, "nonsense"]
    messages = [str(evaluate(question_id, t)) for t in tries]
    messages += [hint(question_id, n) for n in range(1, len(q.hints) + 1)] + [m for _, m in q.nudges]
    for text in _answer_texts(question_id):
        leaks = [m for m in messages if text.lower() in m.lower()]
        assert not leaks, f"{question_id}: {text!r} appears in {leaks[0]!r}"


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_answers_are_stored_only_as_salted_hashes(question_id):
    q, value = QUESTIONS[question_id], ANSWERS[question_id]
    form = {"choice": lambda: answers._choice_form(q, value), "text": lambda: answers.normalise_text(value),
            "number": lambda: str(round(float(value) / q.step))}[q.kind]()
    assert answers.digest(q.salt, form) in q.digests                  # the stored digest is salted ...
    import hashlib
    assert hashlib.sha256(form.encode()).hexdigest()[:24] not in q.digests   # ... not a plain hash
    assert q.salt.split(":")[0] == question_id                        # the salt is an id and random hex only


def test_no_answer_in_plain_text_in_the_library_or_the_learner_notebooks():
    files = [*(REPO / "mi_course").rglob("*.py"), *(REPO / "puzzles").glob("*")]
    texts = {f: f.read_text(encoding="utf-8") for f in files}
    for question_id, value in ANSWERS.items():
        q = QUESTIONS[question_id]
        if q.kind == "number":
            needles = [f"{float(value):.2f}", f"{100 * float(value):.0f}%"]
        else:
            needles = [f"return {value!r}", f'return "{value}"']
        for f, text in texts.items():
            for needle in needles:
                assert needle not in text, f"{f.relative_to(REPO)} contains {needle!r} ({question_id})"


def test_a_solve_is_recorded_and_the_progress_file_holds_no_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    def stub():
        raise NotImplementedError("your code here")

    assert check_answer("P1", stub).status == "missing"
    assert not check_answer("P2", 123456.0)
    assert progress.passed() == set()
    for question_id, value in ANSWERS.items():
        assert check_answer(question_id, value)
    assert progress.passed() == set(ANSWERS)
    data = json.loads((tmp_path / "progress.json").read_text())
    assert set(data["passed"]) == set(ANSWERS)
    assert all(set(entry) == {"first_passed"} for entry in data["passed"].values())
    stored = (tmp_path / "progress.json").read_text()
    for question_id in ANSWERS:
        if QUESTIONS[question_id].kind == "number":
            assert f"{float(ANSWERS[question_id]):.2f}" not in stored


def test_progress_shows_puzzles_solved(tmp_path, monkeypatch):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    progress.record_pass("P2")
    progress.record_pass("P3.confound")
    rows = {r["puzzle"]: r for r in dashboard.puzzle_summary()}
    assert rows["P2"]["solved"] and not rows["P3"]["solved"] and rows["P3"]["bonus"] == 1
    table = dashboard.table()
    assert "(1/3 solved)" in table
    line = next(ln for ln in table.splitlines() if ln.startswith("P2 "))
    assert "Word2vec" in line and "✓" in line
    box = dashboard.widget()
    assert any("1/3 solved" in getattr(child, "value", "") for child in box.children)


def test_hints_step_through_and_unknown_ids_are_errors():
    first = hint("P1", 1)
    assert first.startswith("[P1] Hint 1/") and hint("P1") != first
    with pytest.raises(KeyError):
        evaluate("P9", "a")


def test_an_instructor_can_make_a_new_question(capsys):
    q = make_question("P9", "number", [0.3125], wrong={0.5: "Half is the prior."}, step=0.01, cells=1,
                      fraction=True)
    answers.QUESTIONS["P9"] = q
    try:
        assert evaluate("P9", "31%") and evaluate("P9", 0.32) and not evaluate("P9", 0.34)
        assert evaluate("P9", 0.5).message == "Half is the prior."
        assert "0.31" not in repr(q) and "0.3125" not in answers.question_source(q)
        source = answers.question_source(q)
        assert eval(source.strip().split(": ", 1)[1].rstrip(","), vars(answers)) == q   # the printed entry round-trips
    finally:
        del answers.QUESTIONS["P9"]
    answers.main(["P9", "choice", "c", "third option"])
    assert "'P9': Question(" in capsys.readouterr().out


def test_readme_lists_every_puzzle_as_ready_with_a_link():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for p in PUZZLES:
        row = next(line for line in readme.splitlines() if line.startswith(f"| {p.id} |"))
        assert f"[{p.title}](puzzles/{p.notebook})" in row and ("**ready**" in row) == (p.status == "ready")


def test_every_puzzle_notebook_states_difficulty_time_and_has_parameters():
    for p in PUZZLES:
        nb = nbformat.read(REPO / "puzzles" / p.notebook, as_version=4)
        intro = nb.cells[0].source
        assert f"Difficulty {p.difficulty}" in intro and f"~{p.minutes} min" in intro
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert all(re.search(rf"^{name} =", params.source, re.M) for name in ("device", "seed", "model"))
        calls = [CALL.search(c.source).group(1) for c in nb.cells if c.cell_type == "code" and CALL.search(c.source)]
        assert calls == list(p.questions)


# --- the quantities each puzzle rests on, from the shipped weights -------------------------------

@pytest.fixture(scope="module")
def facts():
    return models.load("gelu-3l-facts", device="cpu")


@pytest.mark.parametrize("name", ["gelu-3l-facts", "attn-only-2l", "attn-only-1l"])
def test_p1_the_measurements_the_puzzle_rests_on(name):
    E = models.load(name, device="cpu").W_E.detach()
    unused, used = torch.from_numpy(world.unused_token_ids()), torch.from_numpy(world.used_token_ids())
    assert geometry.mean_pairwise_cosine(E[unused]) > 0.9
    assert abs(geometry.mean_pairwise_cosine(E[used])) < 0.1
    assert E[unused].norm(dim=-1).mean() > 2 * E[used].norm(dim=-1).mean()
    E0 = training.native_model(training.RECIPES[name]).tok_embed.weight.detach()
    assert abs(geometry.mean_pairwise_cosine(E0[unused])) < 0.1
    assert geometry.mean_pairwise_cosine(geometry.centre(E[unused])) < 0


def _loader_unembedding(name: str, rows: torch.Tensor | None = None) -> torch.Tensor:
    """[d_vocab, d_model]: W_U.T as models.load processes it, from the raw (tied) weights, optionally other rows."""
    raw = models.load(name, device="cpu", processed=False).state_dict()
    W = (raw["unembed.weight"] if rows is None else rows) * raw["ln_final.weight"]
    W = W - W.mean(1, keepdim=True)
    return W - W.mean(0)


def test_p1_the_contrast_and_the_main_answer_from_the_weights():
    unused, used = torch.from_numpy(world.unused_token_ids()), torch.from_numpy(world.used_token_ids())
    low_model, high_model = "gelu-3l-facts", "attn-only-1l"
    loaded = {n: models.load(n, device="cpu").W_U.detach().T for n in (low_model, high_model)}
    assert torch.allclose(_loader_unembedding(high_model), loaded[high_model], atol=1e-4)   # the rebuild is the loader's
    low, high = (geometry.mean_pairwise_cosine(loaded[n][used]) for n in (low_model, high_model))
    assert high > 3 * low
    raw = {n: models.load(n, device="cpu", processed=False).state_dict()["unembed.weight"] for n in (low_model, high_model)}
    W = raw[high_model].clone()
    W[unused] = W[unused] / W[unused].norm(dim=-1, keepdim=True) * raw[low_model][unused].norm(dim=-1).mean()
    counterfactual = geometry.mean_pairwise_cosine(_loader_unembedding(high_model, rows=W)[used])
    assert evaluate("P1", counterfactual)
    for wrong in (high, low, geometry.mean_pairwise_cosine(geometry.centre(loaded[high_model][used]))):
        verdict = evaluate("P1", wrong)                   # the numbers a learner meets on the way get nudges
        assert not verdict and "not it" not in verdict.message, (float(wrong), verdict)


def test_p1_gradients_and_the_bonus_answer(facts):
    E = facts.W_E.detach()
    unused = torch.from_numpy(world.unused_token_ids())
    tokens = training.held_out_tokens(training.RECIPES["gelu-3l-facts"], n_rows=8)
    logits, cache = facts.run_with_cache(tokens, names_filter=lambda n: n in ("ln_final.hook_out",
                                                                              "blocks.2.hook_resid_post"))
    x = cache["ln_final.hook_out"].flatten(0, 1)
    grad = logits.softmax(-1).flatten(0, 1)[:, unused].T @ x                        # [60, d_model]
    assert geometry.mean_pairwise_cosine(grad) > 0.9
    push = torch.nn.functional.cosine_similarity(E[unused].mean(0), x.mean(0), dim=0)
    assert push < -0.5 and evaluate("P1.push", push)              # 8 rows of held-out text suffice
    assert not evaluate("P1.push", -push)
    before_ln = torch.nn.functional.cosine_similarity(E[unused].mean(0), cache["blocks.2.hook_resid_post"].flatten(0, 1).mean(0), dim=0)
    assert not evaluate("P1.push", before_ln)


def test_p2_relation_vectors_beat_random_and_the_answer_holds(facts):
    countries = vectors.word_ids([c for c, _ in world.COUNTRIES])
    capitals = vectors.word_ids([k for _, k in world.COUNTRIES])
    pairs = world.GENDER_PAIRS + tuple(zip(world.PRONOUNS[0], world.PRONOUNS[1]))      # as the notebook builds them
    male = vectors.word_ids([m for m, _ in pairs])
    female = vectors.word_ids([f for _, f in pairs])
    E = vectors.word_vectors(facts, torch.arange(len(world.VOCAB)))
    relation, random = relations.held_out_explained(E[countries], E[capitals])
    assert relation.mean() > 10 * random.mean() and (relation > random).all()
    g_rel, g_rand = relations.held_out_explained(E[male], E[female])
    assert g_rel.mean() > 10 * g_rand.mean()
    assert evaluate("P2", relation.mean())
    for wrong, topic in ((g_rel.mean(), "male -> female"), (random.mean(), "random direction")):
        verdict = evaluate("P2", wrong)                           # the notebook's own numbers get their nudges
        assert not verdict and topic in verdict.message, (float(wrong), verdict)
    T = world.TOKEN_ID
    assert relations.analogy(E, T["Kenya"], T["Spain"], T["Madrid"], world.VOCAB, k=1)[0][0] == "Nairobi"
    assert relations.analogy_accuracy(E, countries, capitals, world.VOCAB) > 0.7


def test_p2_the_last_layer_measurements(facts):
    countries = vectors.word_ids([c for c, _ in world.COUNTRIES])
    capitals = vectors.word_ids([k for _, k in world.COUNTRIES])
    V = vectors.word_vectors(facts, torch.arange(len(world.VOCAB)), "blocks.2.hook_resid_post")
    relation, _ = relations.held_out_explained(V[countries], V[capitals])
    used = torch.from_numpy(world.used_token_ids())
    assert relation.mean() > 0.95
    assert relations.analogy_accuracy(V, countries, capitals, world.VOCAB) < 0.5
    assert geometry.mean_pairwise_cosine(geometry.centre(V[capitals], reference=V[used])) > 0.9


def test_p2_letters_per_word_from_the_weights(facts):
    vocab = world.VOCAB
    ids = torch.tensor([t for t in world.used_token_ids().tolist() if vocab[t].isalpha()])
    y = torch.tensor([len(vocab[t]) for t in ids.tolist()], dtype=torch.float)
    X = facts.W_E.detach()[ids]
    fit, test = slice(0, None, 2), slice(1, None, 2)

    def r2(penalty: float) -> tuple[float, float]:
        mean_x, mean_y = X[fit].mean(0), y[fit].mean()
        A = X[fit] - mean_x
        w = torch.linalg.lstsq(A.T @ A + penalty * torch.eye(X.shape[1]), A.T @ (y[fit] - mean_y)).solution
        return tuple(float(1 - (y[h] - (X[h] - mean_x) @ w - mean_y).pow(2).sum() / (y[h] - y[h].mean()).pow(2).sum())
                     for h in (fit, test))

    scores = {pen: r2(pen) for pen in [0.0] + torch.logspace(-2, 3, 41).tolist()}
    best = max(scores, key=lambda pen: scores[pen][1])
    assert evaluate("P2.length", scores[best][1])
    assert evaluate("P2.length", r2(10.0)[1]) and evaluate("P2.length", r2(3.0)[1])   # a coarse grid passes too
    for wrong in (scores[0.0][1], scores[0.0][0], scores[best][0]):     # held out without a penalty; fitted half
        assert not evaluate("P2.length", wrong)


def test_p2_no_rival_fix_brings_the_last_layer_analogies_back(facts):
    countries = vectors.word_ids([c for c, _ in world.COUNTRIES])
    capitals = vectors.word_ids([k for _, k in world.COUNTRIES])
    used = torch.from_numpy(world.used_token_ids())
    V = vectors.word_vectors(facts, torch.arange(len(world.VOCAB)), "blocks.2.hook_resid_post")
    normed = facts.ln_final(V)
    for fixed in (V - V[used].mean(0), normed, normed @ facts.W_U):
        assert relations.analogy_accuracy(fixed, countries, capitals, world.VOCAB) < 0.5


def test_p3_probes_per_place_and_the_local_context(facts):
    train, test = position.position_data(96), position.position_data(32, first_doc=10**8 + 10**6)
    hooks = position.residual_hooks(facts.cfg.n_layers)
    results = {r.hook: r.accuracy for r in position.probe_layers(
        position.collect_residuals(facts, train.tokens, hooks), train,
        position.collect_residuals(facts, test.tokens, hooks), test)}
    hard = {hook: acc["hard"] for hook, acc in results.items()}
    hooks = list(hard)
    first = next(h for h in hooks[3:] if hard[h] > hard["blocks.0.hook_resid_pre"] + 0.05)
    assert evaluate("P3", first)
    assert hard[first] > hard["blocks.0.hook_resid_pre"] + 0.08
    assert all(hard[h] < hard[first] + 0.02 for h in hooks[hooks.index(first):])
    embed = results["hook_embed"]
    assert embed["sentence-initial"] > 0.85 and max(embed, key=embed.get) == "sentence-initial"
    assert hard["hook_pos_embed"] < 0.25
    mask = train.word_pos >= 0
    labels = train.word_pos[mask].clamp(max=position.N_CLASSES - 1)
    E = facts.W_E.detach()
    context = {k: position.probe_accuracy(position.fit_probe(position.context_features(E, train.tokens, k)[mask], labels),
                                          position.context_features(E, test.tokens, k), test)["hard"] for k in (1, 2, 3)}
    smallest = next(k for k in (1, 2, 3) if context[k] >= max(hard.values()))
    assert evaluate("P3.confound", smallest) and context[1] < max(hard.values()) - 0.08



def test_random_sentences_labels_and_the_counting_answer(facts):
    data = position.random_sentences(4, seed=3)
    stop = world.TOKEN_ID["."]
    assert (data.tokens[:, 0] == world.BOS_ID).all() and (data.word_pos[:, 0] == -1).all()
    for row in range(4):                                   # positions count up from 0 and restart after each full stop
        expected = 0
        for token, pos in zip(data.tokens[row, 1:].tolist(), data.word_pos[row, 1:].tolist()):
            assert pos == expected
            expected = 0 if token == stop else expected + 1
    assert torch.equal(position.random_sentences(4, seed=3).tokens, data.tokens)
    assert not torch.equal(position.random_sentences(4, seed=4).tokens, data.tokens)
    train, test = position.random_sentences(64), position.random_sentences(32, seed=1000)
    hooks = position.residual_hooks(facts.cfg.n_layers)
    train_acts, test_acts = (position.collect_residuals(facts, d.tokens, hooks) for d in (train, test))
    mask = train.word_pos >= 0
    labels = train.word_pos[mask].clamp(max=position.N_CLASSES - 1)
    target = test.word_pos.clamp(max=position.N_CLASSES - 1)
    far = (test.word_pos >= 3) & (test.line > 0) & (test.tokens != stop)
    errors = {}
    for hook in hooks:
        predicted = position.fit_probe(train_acts[hook][mask], labels).predict(test_acts[hook].flatten(0, 1))
        errors[hook] = (predicted.view_as(target) - target).abs()[far].float().mean().item()
    constant = (target[far] - target[far].float().median()).abs().mean().item()
    assert evaluate("P3.counting", min(errors.values())) and min(errors.values()) < constant - 0.4
    assert not evaluate("P3.counting", constant) and not evaluate("P3.counting", errors["blocks.0.hook_resid_pre"])

# --- no way to the answer that is cheaper than solving the puzzle ---------------------------------
# How a reader could find an answer without solving: (1) read the learner's notebook, a hint, or a message
# that names it; (2) read the stored nudges and keep the one option that has none; (3) read which option the
# stored nudge texts describe and keep the one they do not; (4) see the same letter win every time, or one
# option longer and more careful than the rest; (5) read these tests' names and comments. Each test below
# closes one of these. (Looping over the options with check_answer is searching, not reading: see answers.py.)

def _n_layers() -> int:
    return models.load("gelu-3l-facts", device="cpu").cfg.n_layers


def _candidates(question_id: str) -> list[str]:
    """What a learner picks among: the letters of a choice, the places of the residual stream for a place."""
    q = QUESTIONS[question_id]
    if q.kind == "choice":
        return list(q.choices)
    if q.kind == "text" and str(ANSWERS[question_id]).startswith(("hook_", "blocks.")):
        return position.residual_hooks(_n_layers())
    return []


def _key(question_id: str, form: str) -> str:
    q = QUESTIONS[question_id]
    return answers.nudge_key(q.salt, form if q.kind == "choice" else answers.normalise_text(form))


def _plain(text: str) -> str:
    """Lower case, no backticks, underscores read as spaces, one space between words (test names too)."""
    return re.sub(r"\s+", " ", text.lower().replace("`", "").replace("_", " ").replace("’", "'")).strip()


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")


def _place_names(hook: str) -> list[str]:
    """The ways prose names one place of the residual stream (``blocks.0.hook_resid_mid``: block 0's
    attention, attention 0, 0.resid_mid, ...)."""
    match = re.fullmatch(r"blocks\.(\d+)\.hook_(resid_\w+)", hook)
    if not match:
        return [hook]
    layer, kind = match.group(1), match.group(2)
    names = [hook, f"{layer}.{kind}", f"{kind} {layer}", f"{kind} of block {layer}"]
    sub = {"resid_mid": ["attention", "attn"], "resid_post": ["mlp"]}.get(kind, [])
    for part in sub:
        for number in (layer, _NUMBER_WORDS[int(layer)] if int(layer) < len(_NUMBER_WORDS) else layer):
            names += [f"block {number}'s {part}", f"{part} {number}", f"{part} layer of block {number}",
                      f"layer {number}'s {part}", f"L{number} {part}", f"{part} in block {number}"]
    return names


def _needles(question_id: str) -> list[str]:
    """Texts that give this question's answer away wherever a learner can read them."""
    q, value = QUESTIONS[question_id], ANSWERS[question_id]
    if q.kind == "number":
        return [f"{float(value):.2f}"]
    if q.kind == "text":
        return _place_names(str(value)) if str(value).startswith(("hook_", "blocks.")) else [str(value)]
    letter = answers._choice_form(q, value)
    option = q.choices[letter]
    others = " ".join(v for k, v in q.choices.items() if k != letter)
    own_hooks = [h for h in re.findall(r"`?((?:blocks\.\d+\.)?hook_\w+)`?", option) if h not in others]
    return [option] + [name for h in own_hooks for name in _place_names(h)]


def _messages(question_id: str) -> list[str]:
    """Every text the checker can show for this question: hints, and the verdict on every candidate."""
    q = QUESTIONS[question_id]
    shown = [hint(question_id, n) for n in range(1, len(q.hints) + 1)]
    return shown + [str(evaluate(question_id, c)) for c in _candidates(question_id)]


def _learner_texts() -> dict[str, str]:
    """What a learner reads: the generated puzzle notebooks (minus the lines that list the options, where every
    option appears once), the puzzles' README, and every hint and message of every question."""
    texts = {}
    for p in PUZZLES:
        nb = nbformat.read(REPO / "puzzles" / p.notebook, as_version=4)
        for cell in nb.cells:
            lines = [ln for ln in cell.source.splitlines() if not re.match(r"\s*- \*\*[a-z]\.\*\*", ln)]
            texts[f"puzzles/{p.notebook} cell {cell.get('id')}"] = "\n".join(lines)
    texts["puzzles/README.md"] = (REPO / "puzzles" / "README.md").read_text(encoding="utf-8")
    for question_id in QUESTIONS:
        for i, message in enumerate(_messages(question_id)):
            texts[f"{question_id} message {i}"] = message
    return texts


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_nothing_a_learner_reads_names_an_answer(question_id):
    needles = [_plain(n) for n in _needles(question_id)]
    for where, text in _learner_texts().items():
        found = [n for n in needles if n in _plain(text)]
        assert not found, f"{where} gives {question_id}'s answer away: {found[0]!r} in {text!r}"


@pytest.mark.parametrize("question_id", [q for q in ANSWERS if _candidates(q)])
def test_every_candidate_has_a_nudge_the_right_one_too(question_id):
    nudged = {d for d, _ in QUESTIONS[question_id].nudges}
    bare = [c for c in _candidates(question_id) if _key(question_id, c) not in nudged]
    assert not bare, f"{question_id}: {bare} have no stored nudge, so a reader can single them out"


@pytest.mark.parametrize("question_id", list(ANSWERS))
def test_stored_nudges_cannot_be_read_without_giving_their_answer(question_id):
    source = (REPO / "mi_course" / "embeddings" / "answers.py").read_text(encoding="utf-8")
    for key, stored in QUESTIONS[question_id].nudges:
        assert " " not in stored, f"{question_id}: a nudge is stored as plain text: {stored!r}"
        assert key not in QUESTIONS[question_id].digests, f"{question_id}: the right answer's nudge is marked"
    for candidate in _candidates(question_id):
        verdict = evaluate(question_id, candidate)
        if not verdict:
            assert verdict.message not in source, f"{question_id}: {candidate!r}'s nudge is readable in answers.py"


def test_the_right_option_does_not_stand_out():
    letters = []
    for question_id, value in ANSWERS.items():
        q = QUESTIONS[question_id]
        if q.kind != "choice":
            continue
        letter = answers._choice_form(q, value)
        letters.append(letter)
        others = [len(v) for k, v in q.choices.items() if k != letter]
        assert len(q.choices[letter]) <= 1.1 * max(others), f"{question_id}: the right option is the longest"
    assert len(letters) < 2 or len(set(letters)) > 1, f"every choice question is answered by {letters[0]!r}"


def test_these_tests_names_and_comments_name_no_answer():
    import io
    import tokenize
    source = Path(__file__).read_text(encoding="utf-8")
    names = [node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)]
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    for question_id in ANSWERS:
        for text in names + comments:
            found = [n for n in map(_plain, _needles(question_id)) if n in _plain(text)]
            assert not found, f"{text!r} names {question_id}'s answer ({found[0]!r})"
