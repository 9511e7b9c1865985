"""The `mi-course` command: build --check, progress, lab's command line, doctor, --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mi_course.cli import main
from mi_course.doctor import doctor
from mi_course.lab import lab_command

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "puzzle_solution" / "toy_puzzle.ipynb"


def test_build_check_exit_codes(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions" / "puzzles").mkdir(parents=True)
    shutil.copy(FIXTURE, tmp_path / "solutions" / "puzzles" / "toy.ipynb")
    (tmp_path / "puzzles").mkdir()
    monkeypatch.chdir(tmp_path / "puzzles")  # the root is found from a subfolder too

    assert main(["build", "--check"]) == 1
    assert "puzzles/toy.ipynb" in capsys.readouterr().out
    assert main(["build"]) == 0
    assert (tmp_path / "puzzles" / "toy.ipynb").exists()
    assert main(["build", "--check"]) == 0


def test_build_outside_a_repository_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--check"]) == 2
    assert "No solutions/ folder" in capsys.readouterr().err


def test_progress_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "progress.json") in out and "chapter" in out


def test_progress_export_writes_an_anonymous_file_and_says_what_is_in_it(tmp_path, monkeypatch, capsys):
    import json

    from mi_course import progress

    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    progress.record_attempt("03.tms_loss", False)
    progress.record_prediction("03.dense_features", 2.0)
    out = tmp_path / "handed-in" / "export.json"
    assert main(["progress", "--export", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (exercises: 1, puzzle questions: 0, predictions: 1)" in printed and "no name, code" in printed
    data = json.loads(out.read_text())
    assert data["exercises"]["03.tms_loss"]["attempts"] == 1 and data["predictions"] == {"03.dense_features": {"right": None}}
    assert main(["progress", "--export", str(tmp_path)]) == 2            # a folder is not a file name
    assert "is a folder" in capsys.readouterr().err


def test_lab_command_is_local_and_keeps_auth(tmp_path):
    cmd = lab_command(tmp_path, port=9999, open_browser=False)
    assert cmd[1:3] == ["-m", "jupyterlab"]
    assert "--ServerApp.ip=127.0.0.1" in cmd and "--ServerApp.port=9999" in cmd
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in cmd
    joined = " ".join(cmd)
    assert "token=''" not in joined and 'token=""' not in joined
    assert not any(a.endswith("token=") for a in cmd)
    assert "disable_check_xsrf" not in joined and "password" not in joined.lower()
    assert "--allow-root" not in cmd and "--allow-root" in lab_command(tmp_path, allow_root=True)


@pytest.mark.timeout(30)
def test_doctor_reports_without_hanging(capsys):
    report = doctor()
    assert isinstance(report["hub_reachable"], bool)
    assert report["models"]  # "no shipped models yet" until mi_course.models exists
    assert report["device"] in {"cpu", "cuda"} or report["device"].startswith("cuda")
    out = capsys.readouterr().out
    assert "torch" in out and "hub_reachable" in out


def test_console_script_help():
    script = Path(sys.executable).parent / "mi-course"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("build", "progress", "class-report", "lab", "doctor"):
        assert command in result.stdout


def test_check_outputs_reruns_a_notebook_and_reports_what_changed(tmp_path, monkeypatch, capsys):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    (tmp_path / "solutions").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(Path(__file__).resolve().parent / "sanitize.cfg", tmp_path / "tests" / "sanitize.cfg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))    # the command sets its own
    path = tmp_path / "solutions" / "01_toy.ipynb"
    cell = new_code_cell('print(f"loss {2 / 3:.3f} after 12 steps")')
    cell.outputs = [new_output("stream", name="stdout", text="loss 0.666 after 12 steps\n")]   # last digit: noise
    nbformat.write(new_notebook(cells=[cell]), path)
    assert main(["check-outputs"]) == 0
    assert "✓ reproduces its stored outputs" in capsys.readouterr().out

    cell.outputs = [new_output("stream", name="stdout", text="loss 0.701 after 12 steps\n")]   # 5% off
    nbformat.write(new_notebook(cells=[cell]), path)
    assert main(["check-outputs", str(path)]) == 1
    out = capsys.readouterr().out
    assert "✗ 1 cells differ" in out and "0.701 became 0.667" in out
