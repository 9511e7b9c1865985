"""The Binder environment, built from scratch as repo2docker builds it, runs a chapter, and a browser opens one.

A module fixture makes a fresh virtual environment (no system site packages), installs
``binder/requirements.txt`` into it with pip, exactly as written (its extra index for torch's CPU wheels
included), then runs ``binder/postBuild`` in a copy of the repository with a fresh HOME (the course installed
editable from the copy; ``~/.jupyter/jupyter_server_config.py`` with ``default_url``). Then:

- the environment is consistent (``pip check``), has the course from the copy and torch's CPU build, and no
  test tools;
- chapter 01, the generated notebook with its answers put back, runs under papermill in that environment's
  kernel and prints what its stored solution printed (as tests/test_notebooks.py checks in ours);
- that environment's Jupyter server (JupyterLab as its extension, as JupyterHub's single-user server runs it),
  started with the HOME postBuild wrote to, lands in ``chapters/`` from its root URL; chapter 01 opened in
  Chromium runs its parameters, install and setup cells in a kernel of that environment, and the setup cell
  prints the course, torch and device line.

Offline machines: pip finds ``torch==…+cpu`` in a find-links folder (``PIP_FIND_LINKS``, as ``make setup``
uses) or any index; where it finds it nowhere, the tests skip and say so. Any other install failure fails.
The pip cache is reused, so only the first run downloads; ``--no-compile`` skips writing .pyc files for every
installed module ahead (Python compiles what it imports when it imports it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_browser import (_JS_CELL, _JS_FIND_CELL, CELL_TIMEOUT_S, LAB_LOAD_TIMEOUT_S, _poll, browser,  # noqa: F401
                          cell_locator, open_notebook, page, save_screenshot, serve_lab)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/01_residual_stream.ipynb"
TORCH_INDEX_HOST = "download.pytorch.org"
INSTALL_TIMEOUT_S = 1200


@dataclass(frozen=True)
class BinderEnv:
    repo: Path      # the copy of the repository postBuild ran in
    venv: Path
    home: Path      # HOME as postBuild left it
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def _copy_repository(dest: Path) -> Path:
    """The repository's files (tracked, and untracked ones git does not ignore) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _torch_pin(repo: Path) -> str:
    """binder/requirements.txt's torch line, e.g. ``torch==2.13.0+cpu``."""
    return next(line for line in (repo / "binder" / "requirements.txt").read_text().splitlines()
                if line.startswith("torch=="))


def _find_links_wheels(venv: Path, env: dict[str, str], pin: str) -> list[Path]:
    """Wheels of ``pin`` (``name==version``) in the local find-links folders pip is configured with."""
    listed = subprocess.run([str(venv / "bin" / "pip"), "config", "list"], env=env, capture_output=True,
                            text=True).stdout
    folders = [word.removeprefix("file://") for line in listed.splitlines() if ".find-links=" in line
               for word in line.split("=", 1)[1].strip("'\"").split()]
    name, version = pin.split("==")
    return [w for f in folders if Path(f).is_dir() for w in Path(f).glob(f"{name}-{version}-*.whl")]


def _reachable(host: str, port: int = 443, timeout_s: float = 5.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _base_env(venv: Path, home: Path, index_reachable: bool) -> dict[str, str]:
    """The environment's own tools first on PATH, nothing of ours on sys.path, pip's usual cache."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("JUPYTER")}
    cache = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True).stdout.strip()
    env.update({"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
                "HOME": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "OMP_NUM_THREADS": "1"})
    if cache:
        env["PIP_CACHE_DIR"] = cache          # the HOME changes, the cache does not: only a first run downloads
    if not index_reachable:
        # pip retries an unreachable index 5 times with back-off, for every package (~9 s each, ~25 min for
        # the file): one retry and a short connect timeout instead. Reachable, pip runs with its defaults.
        env.update({"PIP_RETRIES": "1", "PIP_TIMEOUT": "15", "PIP_DEFAULT_TIMEOUT": "15"})
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, what: str, timeout_s: float = 600) -> str:
    ran = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if ran.returncode != 0:
        pytest.fail(f"{what} failed (exit {ran.returncode}):\n{(ran.stdout + ran.stderr)[-4000:]}")
    return ran.stdout


def _install_requirements(venv: Path, repo: Path, env: dict[str, str], index_reachable: bool) -> None:
    """``pip install -r binder/requirements.txt`` into ``venv``; skips where the torch pin is found nowhere."""
    start = time.monotonic()
    ran = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-compile", "-r", "binder/requirements.txt"],
                         env=env, cwd=repo, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if ran.returncode != 0:
        torch_pin, output = _torch_pin(repo), ran.stdout + ran.stderr
        # pip says "No matching distribution found", or, when a constraint also names torch, "Cannot install"
        unfound = f"No matching distribution found for {torch_pin}" in output or f"Cannot install {torch_pin}" in output
        if unfound and not index_reachable and not _find_links_wheels(venv, env, torch_pin):
            pytest.skip(f"pip finds {torch_pin} nowhere here: {TORCH_INDEX_HOST} is not reachable and no "
                        f"find-links folder has it (PIP_FIND_LINKS={os.environ.get('PIP_FIND_LINKS')!r}); "
                        "put its wheel in a folder and point PIP_FIND_LINKS at it to run these tests")
        pytest.fail(f"pip install -r binder/requirements.txt failed (exit {ran.returncode}):\n{output[-4000:]}")
    print(f"\nbinder/requirements.txt installed in {time.monotonic() - start:.0f} s")


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory) -> BinderEnv:
    """A fresh venv with binder/requirements.txt, then binder/postBuild run in a copy of the repository."""
    base = tmp_path_factory.mktemp("binder")
    repo, venv, home = _copy_repository(base / "repo"), base / "venv", base / "home"
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    index_reachable = _reachable(TORCH_INDEX_HOST)
    env = _base_env(venv, home, index_reachable)
    _install_requirements(venv, repo, env, index_reachable)
    _run([str(repo / "binder" / "postBuild")], env, repo, "binder/postBuild")     # as repo2docker: an executable
    return BinderEnv(repo=repo, venv=venv, home=home, env=env)


def test_the_environment_is_consistent_and_has_the_course_and_cpu_torch_but_no_test_tools(binder_env):
    _run([binder_env.python, "-m", "pip", "check"], binder_env.env, binder_env.repo, "pip check")
    probe = textwrap.dedent("""\
        import importlib.util, json, sys
        import mi_course, torch
        print(json.dumps({"mi_course": mi_course.__file__, "torch": torch.__version__, "prefix": sys.prefix,
                          "base_prefix": sys.base_prefix, "path": sys.path,
                          "pytest": importlib.util.find_spec("pytest") is not None,
                          "playwright": importlib.util.find_spec("playwright") is not None}))
    """)
    info = json.loads(_run([binder_env.python, "-c", probe], binder_env.env, binder_env.home, "probe"))
    assert Path(info["mi_course"]).is_relative_to(binder_env.repo / "mi_course")      # postBuild's editable install
    assert info["torch"].endswith("+cpu"), info["torch"]
    assert Path(info["prefix"]) == binder_env.venv and info["base_prefix"] != info["prefix"]
    assert not any(str(REPO / ".venv") in p or "dist-packages" in p for p in info["path"]), info["path"]
    assert not info["pytest"] and not info["playwright"]                                # test tools left out
    config = (binder_env.home / ".jupyter" / "jupyter_server_config.py").read_text()
    assert 'c.ServerApp.default_url = "/lab/tree/chapters"' in config
    assert 'c.LabApp.default_url = "/lab/tree/chapters"' in config


CHAPTER_RUN = """\
import json, sys
from pathlib import Path
import nbformat
from jupyter_client.manager import KernelManager
from mi_course.notebook_compare import rerun
from mi_course.notebook_run import load_sanitizer, restore_solutions

chapter, work = Path(sys.argv[1]), Path(sys.argv[2])
solution_nb = nbformat.read(Path("solutions") / chapter.name, as_version=4)
notebook = restore_solutions(nbformat.read(chapter, as_version=4), solution_nb)
ran, problems = rerun(solution_nb, work, load_sanitizer(Path("tests/sanitize.cfg")), parameters={"device": "cpu"},
                      notebook=notebook)
texts = [o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in ran.cells for o in c.get("outputs", [])]
spec = KernelManager(kernel_name="python3").kernel_spec     # the kernel papermill started (execute's kernel_name)
print(json.dumps({"problems": problems, "kernel": [spec.resource_dir, *spec.argv],
                  "passed": sum("✅ passed" in t for t in texts),
                  "setup": next((t for t in texts if "· torch" in t), "")}))
"""


def test_chapter_01_runs_in_the_binder_environment_and_matches_its_stored_outputs(binder_env, tmp_path):
    """The generated chapter, answers put back, run by papermill in the environment's kernel: the same outputs
    as the stored solution (compared by mi_course.notebook_compare, as in tests/test_notebooks.py)."""
    script = tmp_path / "run_chapter.py"
    script.write_text(CHAPTER_RUN)
    env = {**binder_env.env, "MI_COURSE_PROGRESS": str(tmp_path / "progress.json")}
    env.pop("MPLBACKEND", None)     # the kernel's own default: inline figures, as stored
    out = _run([binder_env.python, str(script), CHAPTER, str(tmp_path / "run")], env, binder_env.repo,
               f"running {CHAPTER} in the Binder environment", timeout_s=900)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["problems"] == [], "\n".join(result["problems"])
    resource_dir, executable = result["kernel"][:2]        # the environment's own ipykernel, its own python
    assert Path(resource_dir).is_relative_to(binder_env.venv), result["kernel"]
    assert executable in ("python", "python3") or Path(executable).parent == binder_env.venv / "bin", result["kernel"]
    assert result["passed"] >= 1 and "device cpu" in result["setup"], result


def _version(repo: Path) -> str:
    from mi_course.launch import project_version

    return project_version(repo)


def _setup_line(repo: Path) -> str:
    """What chapter 01's setup cell prints first on a CPU: the course's and the pinned torch's versions."""
    torch_version = _torch_pin(repo).removeprefix("torch==").split("+")[0]
    return f"mi_course {_version(repo)} · torch {torch_version} · device cpu"


def _kernel_command(lab, kernel_id: str) -> list[str]:
    """The command line of the kernel process the server started for ``kernel_id``."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(f"kernel-{kernel_id}.json" in arg for arg in cmdline):
            return cmdline
    raise AssertionError(f"no process runs kernel {kernel_id}\nserver log:\n{lab.log_tail()}")


@pytest.mark.browser
def test_a_chapter_opens_and_its_setup_runs_in_the_binder_environments_jupyterlab(binder_env, page, tmp_path):
    from playwright.sync_api import expect

    base = tmp_path / "lab"
    base.mkdir()
    env = {**binder_env.env, "JUPYTER_CONFIG_DIR": None, "JUPYTER_PLATFORM_DIRS": None}  # ~/.jupyter, as on Binder
    # `jupyter lab`, which lands on /lab unless postBuild's config sets LabApp's default_url too.
    with serve_lab(base, binder_env.repo, python=binder_env.python, env=env) as lab:
        try:
            page.goto(lab.url("/"), timeout=LAB_LOAD_TIMEOUT_S * 1000)          # the root URL, as Binder opens it
            page.wait_for_url("**/lab/tree/chapters**", timeout=LAB_LOAD_TIMEOUT_S * 1000)
            expect(page.locator(".jp-DirListing-item", has_text=Path(CHAPTER).name)).to_be_visible(
                timeout=LAB_LOAD_TIMEOUT_S * 1000)                               # the file browser shows chapters/

            open_notebook(page, lab, CHAPTER)
            first = page.evaluate(_JS_FIND_CELL, [CHAPTER, 'device = "auto"'])          # the parameters cell
            setup = page.evaluate(_JS_FIND_CELL, [CHAPTER, "resolve_device(device)"])
            assert 0 <= first < setup, (first, setup)
            fresh = [page.evaluate(_JS_CELL, [CHAPTER, i]) for i in range(first, setup + 1)]
            assert all(c["count"] is None and not c["outputs"] for c in fresh), fresh   # what shows below ran now
            cell_locator(page, CHAPTER, first, "parameters").locator(".jp-InputPrompt").click()
            for _ in range(first, setup + 1):       # parameters, install, setup: Shift+Enter runs and moves on
                page.keyboard.press("Shift+Enter")
            _poll(page, lambda: page.evaluate(_JS_CELL, [CHAPTER, setup])["count"] is not None,
                  LAB_LOAD_TIMEOUT_S + CELL_TIMEOUT_S, lambda: f"the setup cell (cell {setup}) did not run")
            output = cell_locator(page, CHAPTER, setup, "setup").locator(".jp-OutputArea")
            expect(output).to_contain_text(_setup_line(binder_env.repo), timeout=CELL_TIMEOUT_S * 1000)
            outputs = [page.evaluate(_JS_CELL, [CHAPTER, i])["outputs"] for i in range(first, setup + 1)]
            assert not [o for cell in outputs for o in cell if o["output_type"] == "error"], outputs
            printed = "".join("".join(o.get("text", "")) for cell in outputs for o in cell)
            assert f"mi_course {_version(binder_env.repo)} is installed" in printed, printed

            request = urllib.request.Request(lab.url("/api/kernels"))
            with urllib.request.urlopen(request, timeout=10) as response:
                (kernel,) = json.loads(response.read())
            assert Path(_kernel_command(lab, kernel["id"])[0]).parent == binder_env.venv / "bin"
        finally:
            save_screenshot(page, "binder_chapter01", tmp_path)
