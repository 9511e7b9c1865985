"""Drive JupyterLab in headless Chromium, as a learner would.

A real JupyterLab server (token auth on, all Jupyter state in a temporary
folder) serves a copy of a notebook; Playwright opens it in Debian's Chromium,
runs every cell, checks that widgets render and that the grader's messages
show, types a solution into an exercise cell and runs it.

The generic machinery is exercised on a tiny fixture notebook (fast); the
chapter tests drive every generated chapter (one case each in CHAPTER_CASES), and
the puzzle test answers puzzle P1.

Needs ``/usr/bin/chromium`` (``make browser`` installs it): without it these
tests skip, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPO / "artifacts" / "browser"

SERVER_START_TIMEOUT_S = 90
LAB_LOAD_TIMEOUT_S = 120  # JupyterLab's first load in Chromium is slow on 2 cores
KERNEL_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_S = 480  # chapter 03 trains small models on the CPU: 60 s alone, 200 s on a busy 2-core box
CELL_TIMEOUT_S = 120

CHAPTER_01 = REPO / "chapters" / "01_residual_stream.ipynb"
CHAPTER_01_SOLUTION = '''\
def kurtosis(x):
    c = x - x.mean(-1, keepdim=True)
    return c.pow(4).mean(-1) / c.pow(2).mean(-1).pow(2)

kurtosis = check(kurtosis)'''
CHAPTER_02 = REPO / "chapters" / "02_virtual_weights.ipynb"
CHAPTER_02_SOLUTION = '''\
def composition_score(W_A, W_B):
    return ((W_A @ W_B).norm() / (W_A.norm() * W_B.norm()).clamp_min(1e-12)).item()

composition_score = check(composition_score)'''
CHAPTER_04 = REPO / "chapters" / "04_induction.ipynb"
CHAPTER_04_SOLUTION = '''\
def template_score(patterns, template):
    rows = template.sum(-1) > 0
    return (patterns * template.float()).sum(-1)[..., rows].mean(dim=(1, 3))

template_score = check(template_score)'''
CHAPTER_05 = REPO / "chapters" / "05_sparse_autoencoders.ipynb"
CHAPTER_05_SOLUTION = '''\
def mmcs(W_dec, true_features):
    cos = unit_rows(true_features) @ unit_rows(W_dec).T
    return cos.max(dim=1).values.mean()

mmcs = check(mmcs)'''
CHAPTER_06 = REPO / "chapters" / "06_fact_recall.ipynb"
CHAPTER_06_SOLUTION = '''\
def normalised_metric(value, clean, corrupt):
    return ((value - corrupt) / (clean - corrupt)).mean()

normalised_metric = check(normalised_metric)'''
CHAPTER_03 = REPO / "chapters" / "03_superposition.ipynb"
CHAPTER_03_SOLUTION = '''\
def dimensions_per_feature(W):
    return W.shape[-2] / W.pow(2).sum(dim=(-2, -1))

dimensions_per_feature = check(dimensions_per_feature)'''


# --------------------------------------------------------------------------
# The JupyterLab server
# --------------------------------------------------------------------------

@dataclass
class Lab:
    root: Path
    port: int
    token: str
    log: Path
    progress: Path  # $MI_COURSE_PROGRESS for the kernels it starts

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}{path}{sep}token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolated_env(base: Path, progress: Path) -> dict[str, str]:
    """Environment for the server (and so the kernel): all Jupyter state under ``base``."""
    env = dict(os.environ)
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": base / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
        "IPYTHONDIR": base / "ipython",
    }
    env["MI_COURSE_PROGRESS"] = str(progress)
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("MPLBACKEND", None)  # the kernel's own default (inline plots)
    # Offline: no news or update checks (they would only add toasts and failed requests).
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    notification = settings / "notification.jupyterlab-settings"
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


def _wait_for_server(lab: Lab, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url("/api/status"), timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S} s:\n{lab.log_tail()}")


@contextlib.contextmanager
def serve_lab(base: Path, root: Path, python: str = sys.executable, env: dict[str, str | None] | None = None,
              app: str = "jupyterlab"):
    """A JupyterLab server of ``python``'s environment on ``root`` (token auth on 127.0.0.1, a free port,
    Jupyter state under ``base``: :func:`_isolated_env`, with ``env``'s variables set, or removed where None);
    yields its :class:`Lab` once it answers, and stops it at the end. ``app``: the module started
    (``jupyter_server`` for a plain server with JupyterLab as its extension, as JupyterHub starts one)."""
    lab = Lab(root=root, port=_free_port(), token=secrets.token_hex(16), log=base / "jupyterlab.log",
              progress=base / "progress.json")
    cmd = [
        python, "-m", app, "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={lab.port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={lab.token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={base / 'lab-workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands and read the model
        "--LabApp.extension_manager=readonly",  # offline: no PyPI queries
    ]
    if os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--allow-root")
    server_env = _isolated_env(base, lab.progress)
    for name, value in (env or {}).items():
        if value is None:
            server_env.pop(name, None)
        else:
            server_env[name] = value
    with open(lab.log, "wb") as log:
        proc = subprocess.Popen(cmd, env=server_env, cwd=root, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(lab, proc)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    """A JupyterLab server whose root is an empty temporary folder; killed at the end."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    with serve_lab(base, root) as lab:
        yield lab


# --------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: install Debian's chromium (`make browser`) to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true, so this is a failure, not a skip)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


# --------------------------------------------------------------------------
# Driving a notebook
# --------------------------------------------------------------------------

# JavaScript run in the page. `jupyterapp` is exposed by --LabApp.expose_app_in_browser.
_JS_PANEL = """
(path) => {
  const panels = Array.from(window.jupyterapp.shell.widgets('main'));
  return panels.find(w => w.context && w.context.path === path);
}
"""

_JS_ACTIVATE_PANEL = f"""
(path) => {{
  const panel = ({_JS_PANEL})(path);
  if (!panel) return false;
  window.jupyterapp.shell.activateById(panel.id);
  return window.jupyterapp.shell.currentWidget === panel;
}}
"""

_JS_NOTEBOOK_READY = f"""
(path) => {{
  if (!window.jupyterapp) return false;
  const panel = ({_JS_PANEL})(path);
  if (!panel || !panel.context.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}}
"""

_JS_RUN_STATE = f"""
(path) => {{
  const panel = ({_JS_PANEL})(path);
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  const model = panel.content.model;
  for (let i = 0; i < model.cells.length; i++) {{
    const cell = model.cells.get(i);
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    const error = outputs.find(o => o.output_type === 'error');
    cells.push({{
      index: i,
      empty: cell.sharedModel.getSource().trim() === '',
      count: cell.executionCount,
      error: error ? error.ename + ': ' + error.evalue : null,
    }});
  }}
  return {{kernel: kernel ? kernel.status : 'none', cells}};
}}
"""

_JS_FIND_CELL = f"""
([path, marker]) => {{
  const panel = ({_JS_PANEL})(path);
  const model = panel.content.model;
  for (let i = 0; i < model.cells.length; i++) {{
    if (model.cells.get(i).sharedModel.getSource().includes(marker)) return i;
  }}
  return -1;
}}
"""

_JS_ACTIVATE_CELL = f"""
async ([path, index, tag]) => {{
  const panel = ({_JS_PANEL})(path);
  const notebook = panel.content;
  notebook.mode = 'command';
  notebook.activeCellIndex = index;
  await notebook.scrollToItem(index);
  notebook.widgets[index].node.dataset.testCell = tag;
}}
"""

_JS_CELL = f"""
([path, index]) => {{
  const cell = ({_JS_PANEL})(path).content.model.cells.get(index);
  return {{source: cell.sharedModel.getSource(), count: cell.executionCount,
           outputs: cell.outputs.toJSON()}};
}}
"""


def _poll(page, predicate, timeout_s: float, describe) -> None:
    """Call ``predicate()`` until true; on timeout fail with ``describe()``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(500)
    pytest.fail(f"timed out after {timeout_s:.0f} s: {describe()}")


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open ``name`` in JupyterLab and wait for its kernel to be idle."""
    page.goto(lab.url(f"/lab/tree/{quote(name)}"), timeout=LAB_LOAD_TIMEOUT_S * 1000)
    _poll(page, lambda: page.evaluate(_JS_NOTEBOOK_READY, name), LAB_LOAD_TIMEOUT_S + KERNEL_TIMEOUT_S,
          lambda: f"notebook {name} never became ready with an idle kernel\nserver log:\n{lab.log_tail()}")


def run_all_cells(page, name: str, timeout_s: float = RUN_ALL_TIMEOUT_S) -> float:
    """Run All Cells; wait until every non-empty code cell has run and the kernel is idle.

    Outputs and execution counts saved in the file are cleared first, so a
    count means "ran now". Fails at once if a cell raised. Returns the seconds it took.
    """
    start = time.monotonic()
    # The notebook commands act on the current tab, and JupyterLab's workspace may have restored earlier tests'
    # notebooks around this one (the server is shared): make this notebook the current tab first.
    _poll(page, lambda: page.evaluate(_JS_ACTIVATE_PANEL, name), LAB_LOAD_TIMEOUT_S,
          lambda: f"{name} could not be made the current tab")
    page.evaluate("""async () => {
      await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
      await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    state: dict = {}

    def done() -> bool:
        state.update(page.evaluate(_JS_RUN_STATE, name))
        errors = [c for c in state["cells"] if c["error"]]
        if errors:
            pytest.fail(f"cell {errors[0]['index']} raised {errors[0]['error']}")
        pending = [c for c in state["cells"] if not c["empty"] and c["count"] is None]
        return not pending and state["kernel"] == "idle"

    def describe() -> str:
        pending = [c["index"] for c in state.get("cells", []) if not c["empty"] and c["count"] is None]
        return f"Run All Cells not finished: kernel {state.get('kernel')}, cells not run yet: {pending}"

    _poll(page, done, timeout_s, describe)
    return time.monotonic() - start


def cell_locator(page, name: str, index: int, tag: str):
    """Make cell ``index`` active, scroll to it, and return a locator for its DOM node."""
    page.evaluate(_JS_ACTIVATE_CELL, [name, index, tag])
    locator = page.locator(f".jp-Notebook .jp-Cell[data-test-cell='{tag}']")
    locator.scroll_into_view_if_needed()
    return locator


def replace_cell_source(page, cell, text: str) -> None:
    """Replace a cell's text by typing into its CodeMirror editor."""
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def save_screenshot(page, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shutil.copy(path, tmp_path / path.name)
    return path


@dataclass
class Timings:
    open_s: float
    run_all_s: float
    exercise_s: float


def drive_notebook(page, lab: Lab, notebook: str, *, exercise_cell_marker: str, solution_source: str,
                   screenshot: str, tmp_path: Path,
                   widget_selector: str = ".jupyter-widgets:not(.widget-error)") -> Timings:
    """What a learner does, checked at each step.

    Open the notebook, Run All Cells (no cell may raise); a widget renders; the
    exercise cell (the code cell containing ``exercise_cell_marker``) shows
    "❌ not yet"; type ``solution_source`` into it, run it with Shift+Enter, and
    it shows "✅ passed". A screenshot is saved either way.
    """
    try:
        timings = _drive(page, lab, notebook, exercise_cell_marker, solution_source, widget_selector)
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: never hide the real failure
            print(f"\nscreenshot of the failure: {save_screenshot(page, screenshot, tmp_path)}")
        raise
    save_screenshot(page, screenshot, tmp_path)
    return timings


def _drive(page, lab: Lab, notebook: str, marker: str, solution: str, widget_selector: str) -> Timings:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    open_notebook(page, lab, notebook)
    t_open = time.monotonic() - t0
    t_run_all = run_all_cells(page, notebook)

    # only this notebook's panel: the tabs of notebooks opened earlier stay in the page, hidden
    widget = page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) {widget_selector}").first
    widget.scroll_into_view_if_needed()
    expect(widget).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Error displaying widget")

    index = page.evaluate(_JS_FIND_CELL, [notebook, marker])
    assert index >= 0, f"no cell in {notebook} contains {marker!r}"
    cell = cell_locator(page, notebook, index, "exercise")
    output = cell.locator(".jp-OutputArea")
    expect(output).to_contain_text("❌ not yet")
    count_before = page.evaluate(_JS_CELL, [notebook, index])["count"]

    t1 = time.monotonic()
    replace_cell_source(page, cell, solution)
    typed = page.evaluate(_JS_CELL, [notebook, index])["source"]
    assert typed == solution, f"the editor holds:\n{typed}"
    page.keyboard.press("Shift+Enter")
    _poll(page, lambda: page.evaluate(_JS_CELL, [notebook, index])["count"] not in (None, count_before),
          CELL_TIMEOUT_S, lambda: f"exercise cell {index} did not run again after Shift+Enter")
    cell.scroll_into_view_if_needed()
    expect(output).to_contain_text("✅ passed", timeout=CELL_TIMEOUT_S * 1000)
    expect(output).not_to_contain_text("❌ not yet")
    return Timings(t_open, t_run_all, time.monotonic() - t1)


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

def _fixture_notebook() -> nbformat.NotebookNode:
    """A tiny notebook shaped like a chapter: a widget, a grader, a stub exercise."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Fixture notebook for the browser test"),
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\n"
            "widgets.IntSlider(value=3, min=0, max=10, description='features')"),
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML, display\n\n"
            "def check(fn):\n"
            "    try:\n"
            "        ok = fn() == 42\n"
            "    except Exception:\n"
            "        ok = False\n"
            "    display(HTML('<b>✅ passed</b>' if ok else '<b>❌ not yet</b>'))\n"
            "    return fn"),
        nbformat.v4.new_code_cell(
            "def answer():\n"
            "    # your code here\n"
            "    raise NotImplementedError(\"your code here\")\n\n"
            "answer = check(answer)"),
        nbformat.v4.new_code_cell("print('the cells below still run')"),
    ]
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = 10 + count  # stale counts, as in a saved notebook: must not fool the wait
    return nb


def test_fixture_notebook_in_jupyterlab(lab, page, tmp_path):
    name = "fixture.ipynb"
    nbformat.write(_fixture_notebook(), lab.root / name)
    timings = drive_notebook(
        page, lab, name,
        exercise_cell_marker="def answer(",
        solution_source="def answer():\n    return 42\n\nanswer = check(answer)",
        widget_selector=".widget-slider",
        screenshot="fixture", tmp_path=tmp_path,
    )
    print(f"\nfixture notebook: {timings}")


@dataclass(frozen=True)
class ChapterCase:
    notebook: Path
    exercise_marker: str        # the exercise cell the test solves in the page
    solution: str
    exercise_id: str
    widget_selector: str        # the chapter's widget, which must render
    extra_selector: str = ""    # something else that must be drawn in the page
    interact: Callable[[Any], None] | None = None   # then use the widget as a learner would (gets the page)
    prediction: tuple[str, str] | None = None       # (question id, answer): predict it, then rerun its reveal


def answer_a_prediction(page, name: str, question: str, answer: str) -> None:
    """Predict, then check, as a learner does after Run All: the question's cell says there is no prediction yet;
    type the answer into it and run it (recorded); run the cell that reveals it again (graded)."""
    from playwright.sync_api import expect

    def run(index: int, tag: str, new_source: str | None = None):
        cell = cell_locator(page, name, index, tag)
        before = page.evaluate(_JS_CELL, [name, index])["count"]
        if new_source is not None:
            replace_cell_source(page, cell, new_source)
        page.keyboard.press("Shift+Enter")
        _poll(page, lambda: page.evaluate(_JS_CELL, [name, index])["count"] not in (None, before), CELL_TIMEOUT_S,
              lambda: f"cell {index} ({tag}) did not run again after Shift+Enter")
        cell.scroll_into_view_if_needed()
        return cell.locator(".jp-OutputArea")

    asked = page.evaluate(_JS_FIND_CELL, [name, f'predict("{question}"'])
    revealed = page.evaluate(_JS_FIND_CELL, [name, f'reveal("{question}"'])
    assert 0 <= asked < revealed, (asked, revealed)
    expect(cell_locator(page, name, asked, "prediction").locator(".jp-OutputArea")).to_contain_text("No prediction yet")
    source = page.evaluate(_JS_CELL, [name, asked])["source"]
    variable = source.split(" = None", 1)[0].split()[-1]
    output = run(asked, "prediction", source.replace(f"{variable} = None", f"{variable} = {answer!r}", 1))
    expect(output).to_contain_text(f"prediction recorded: {answer!r}", timeout=CELL_TIMEOUT_S * 1000)
    output = run(revealed, "reveal")
    expect(output).to_contain_text(f"✓ you predicted {answer!r}", timeout=CELL_TIMEOUT_S * 1000)


def pick_another_feature(page) -> None:
    """Chapter 05's feature browser: type another feature number; the card must be redrawn for it."""
    from playwright.sync_api import expect

    picker = page.locator(".widget-vbox .widget-text input[type='number']").first
    card = page.locator(".widget-vbox .widget-output img").first
    picker.scroll_into_view_if_needed()
    before = card.get_attribute("src")
    new_value = "1" if picker.input_value() != "1" else "2"
    picker.fill(new_value)
    picker.press("Enter")
    _poll(page, lambda: card.get_attribute("src") not in (None, before), CELL_TIMEOUT_S,
          lambda: "the feature card was not redrawn after picking another feature")
    expect(picker).to_have_value(new_value)


def patch_the_residual_stream(page) -> None:
    """Chapter 06's patching explorer: switch from head outputs to the residual stream; the maps must be redrawn."""
    button = page.locator(".widget-toggle-button", has_text="residual stream").first
    maps = page.locator(".widget-vbox .widget-output img").first
    button.scroll_into_view_if_needed()
    before = maps.get_attribute("src")
    button.click()
    _poll(page, lambda: maps.get_attribute("src") not in (None, before), CELL_TIMEOUT_S,
          lambda: "the patching maps were not redrawn after switching to the residual stream")


CHAPTER_CASES = [
    ChapterCase(CHAPTER_01, "def kurtosis(", CHAPTER_01_SOLUTION, "01.kurtosis",
                ".widget-dropdown",                         # residual_explorer's person picker
                prediction=("01.kurtosis_under_rotation", "fall to about 3")),
    ChapterCase(CHAPTER_02, "def composition_score(", CHAPTER_02_SOLUTION, "02.composition_score",
                ".widget-dropdown"),                        # the head explorer's pickers
    ChapterCase(CHAPTER_03, "def dimensions_per_feature(", CHAPTER_03_SOLUTION, "03.dimensions_per_feature",
                ".widget-slider"),                          # superposition_explorer's sliders (tqdm bars are widgets too)
    ChapterCase(CHAPTER_04, "def template_score(", CHAPTER_04_SOLUTION, "04.template_score",
                ".widget-slider",                           # the checkpoint explorer
                # circuitsvis drew its attention patterns (offline: the bundle comes with the first view)
                'div[id^="mi-cv-"] canvas, div[id^="mi-cv-"] svg, div[id^="mi-cv-"] div'),
    ChapterCase(CHAPTER_05, "def mmcs(", CHAPTER_05_SOLUTION, "05.mmcs",
                ".widget-vbox .widget-output img",         # the feature browser's card
                interact=pick_another_feature),
    ChapterCase(CHAPTER_06, "def normalised_metric(", CHAPTER_06_SOLUTION, "06.normalised_metric",
                ".widget-vbox .widget-output img",         # the patching explorer's maps
                interact=patch_the_residual_stream),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CHAPTER_CASES, ids=[c.notebook.stem[:2] for c in CHAPTER_CASES])
def test_chapter_in_jupyterlab(case, lab, page, tmp_path):
    if not case.notebook.exists():
        pytest.skip(f"{case.notebook.name} not generated yet")
    shutil.copy(case.notebook, lab.root / case.notebook.name)
    timings = drive_notebook(page, lab, case.notebook.name, exercise_cell_marker=case.exercise_marker,
                             solution_source=case.solution, widget_selector=case.widget_selector,
                             screenshot=f"chapter{case.notebook.stem[:2]}", tmp_path=tmp_path)
    print(f"\n{case.notebook.stem}: {timings}")
    if case.extra_selector:
        _poll(page, lambda: page.locator(case.extra_selector).count() > 0, 60,
              lambda: f"nothing matches {case.extra_selector!r} in the page")
    if case.interact is not None:
        case.interact(page)
    if case.prediction is not None:
        answer_a_prediction(page, case.notebook.name, *case.prediction)
    progress = json.loads(lab.progress.read_text())
    assert case.exercise_id in progress["passed"], progress["passed"]
    if case.prediction is not None:
        recorded = progress["predictions"][case.prediction[0]]
        assert recorded["first"] == case.prediction[1] and recorded["right"] is True, recorded


def _solution_answer_cell(puzzle_notebook: str) -> str:
    """The solution's first answer cell (``def answer(): ... check_answer(...)``), markers removed."""
    nb = nbformat.read(REPO / "solutions" / "puzzles" / puzzle_notebook, as_version=4)
    source = next(c.source for c in nb.cells if c.cell_type == "code" and "check_answer(" in c.source)
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


@pytest.mark.slow
def test_puzzle_in_jupyterlab(lab, page, tmp_path):
    """A learner opens puzzle P1, runs it (its answer cell says "no answer yet"), writes the answer, and the
    check says solved, in the page and in the progress file."""
    from playwright.sync_api import expect

    name = "P1_similar_embeddings.ipynb"
    shutil.copy(REPO / "puzzles" / name, lab.root / name)
    try:
        open_notebook(page, lab, name)
        run_all_cells(page, name)
        index = page.evaluate(_JS_FIND_CELL, [name, "def answer("])
        assert index >= 0, f"no answer cell in {name}"
        cell = cell_locator(page, name, index, "answer")
        output = cell.locator(".jp-OutputArea")
        expect(output).to_contain_text("no answer yet")
        count_before = page.evaluate(_JS_CELL, [name, index])["count"]
        replace_cell_source(page, cell, _solution_answer_cell(name))
        page.keyboard.press("Shift+Enter")
        _poll(page, lambda: page.evaluate(_JS_CELL, [name, index])["count"] not in (None, count_before),
              CELL_TIMEOUT_S, lambda: f"answer cell {index} did not run again after Shift+Enter")
        cell.scroll_into_view_if_needed()
        expect(output).to_contain_text("✅ solved", timeout=CELL_TIMEOUT_S * 1000)
    finally:
        save_screenshot(page, "puzzleP1", tmp_path)
    assert "P1" in json.loads(lab.progress.read_text())["passed"]


# --------------------------------------------------------------------------
# Chapter 04's hand-built induction circuit
# --------------------------------------------------------------------------

CHAPTER_04_SOLUTIONS = REPO / "solutions" / "04_induction.ipynb"
HANDBUILT_EXERCISES = (("def previous_token_head(", "04.handbuilt_previous_token"),
                       ("def induction_head(", "04.handbuilt_induction"))


def _solution_cell(notebook: Path, marker: str) -> str:
    """The solution notebook's code cell containing ``marker``, solution markers removed: what a learner types."""
    nb = nbformat.read(notebook, as_version=4)
    source = next(c.source for c in nb.cells if c.cell_type == "code" and marker in c.source)
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


@pytest.mark.slow
def test_handbuilt_circuit_in_jupyterlab(lab, page, tmp_path):
    """A learner writes both heads of chapter 04's hand-built induction circuit in JupyterLab: after Run All each
    exercise cell says "not yet"; typed in, each passes; the prediction about the first copy is recorded and, when
    the cell that runs the learner's circuit is run again (it draws both attention patterns), graded."""
    from playwright.sync_api import expect

    if not CHAPTER_04.exists():
        pytest.skip(f"{CHAPTER_04.name} not generated yet")
    name = CHAPTER_04.name
    shutil.copy(CHAPTER_04, lab.root / name)
    try:
        open_notebook(page, lab, name)
        run_all_cells(page, name)
        for k, (marker, exercise_id) in enumerate(HANDBUILT_EXERCISES):
            index = page.evaluate(_JS_FIND_CELL, [name, marker])
            assert index >= 0, f"no cell in {name} contains {marker!r}"
            cell = cell_locator(page, name, index, f"handbuilt-{k}")
            output = cell.locator(".jp-OutputArea")
            expect(output).to_contain_text("❌ not yet")
            expect(output).to_contain_text("not implemented yet")
            count_before = page.evaluate(_JS_CELL, [name, index])["count"]
            solution = _solution_cell(CHAPTER_04_SOLUTIONS, marker)
            replace_cell_source(page, cell, solution)
            assert page.evaluate(_JS_CELL, [name, index])["source"] == solution
            page.keyboard.press("Shift+Enter")
            _poll(page, lambda: page.evaluate(_JS_CELL, [name, index])["count"] not in (None, count_before),
                  CELL_TIMEOUT_S, lambda: f"exercise cell {index} did not run again after Shift+Enter")
            cell.scroll_into_view_if_needed()
            expect(output).to_contain_text("✅ passed", timeout=CELL_TIMEOUT_S * 1000)
            expect(output).to_contain_text(exercise_id)
            expect(output).not_to_contain_text("❌ not yet")
        # predict, then rerun the cell that runs the learner's circuit, draws it and reveals the answer
        answer_a_prediction(page, name, "04.handbuilt_first_copy", 0.0)
        drawn = page.evaluate(_JS_CELL, [name, page.evaluate(_JS_FIND_CELL, [name, 'reveal("04.handbuilt_first_copy"'])])
        assert any("image/png" in o.get("data", {}) for o in drawn["outputs"]), "the attention patterns were not drawn"
        text = "".join("".join(o.get("text", "")) for o in drawn["outputs"] if o.get("output_type") == "stream")
        assert "second copy 100%" in text and "✓ the hand-built circuit predicts more than 90%" in text, text
    finally:
        save_screenshot(page, "chapter04_handbuilt", tmp_path)
    progress = json.loads(lab.progress.read_text())
    assert {exercise_id for _, exercise_id in HANDBUILT_EXERCISES} <= set(progress["passed"]), progress["passed"]
    recorded = progress["predictions"]["04.handbuilt_first_copy"]
    assert recorded["first"] == 0.0 and recorded["right"] is True, recorded
