"""The ``mi-course`` command: ``build``, ``progress``, ``class-report``, ``lab``, ``doctor``, ``train`` and ``check-outputs``.

Run ``mi-course --help`` or ``mi-course <command> --help`` for details.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _build(args: argparse.Namespace) -> int:
    from .notebook_build import build_all, find_root, stale

    try:
        root = find_root()
        files = build_all(root, check=args.check, force=args.force)
    except (OSError, ValueError) as exc:  # no repository, unreadable notebook, BuildError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if files:
            print("Out of date (run `mi-course build`; delete notebooks that have no solution):")
            print("\n".join(f"  {p.relative_to(root)}" for p in files))
            return 1
        print("All generated files are up to date.")
        return 0
    print("\n".join(f"wrote {p.relative_to(root)}" for p in files) or "Nothing to do: all up to date.")
    for path in stale(root):
        print(f"warning: {path.relative_to(root)} has no solution notebook; delete it if it is obsolete.")
    return 0


def _progress(args: argparse.Namespace) -> int:
    if args.export:
        return _export(Path(args.export))
    from .dashboard import table

    print(table())
    return 0


def _export(out: Path) -> int:
    """``mi-course progress --export FILE``: the anonymous export a learner hands in."""
    from .classroom import ExportError, write_export

    try:
        data = write_export(out)
    except (ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name}: {len(data[s])}" for s, name in
                       (("exercises", "exercises"), ("puzzles", "puzzle questions"), ("predictions", "predictions")))
    print(f"wrote {out} ({counts}): counts, hints, pass/fail and durations only; no name, code, answer, "
          "path or clock time. Hand it to your instructor.")
    return 0


def _class_report(args: argparse.Namespace) -> int:
    """``mi-course class-report``: where the room stalls, from many exports (0: all read; 1: some skipped; 2: no report)."""
    from .classroom import ExportError, class_report, export_files, format_table, plot, to_csv

    inputs = {p.resolve() for p in export_files(args.paths)[0]}
    outputs = [Path(p).expanduser() for p in (args.figure, args.csv) if p]
    if any(o.resolve() in inputs for o in outputs):
        print("error: --figure/--csv would overwrite one of the exports; choose another file", file=sys.stderr)
        return 2
    try:
        rows, learners, skipped = class_report(args.paths, min_learners=args.min_learners)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows, learners))
    try:
        if args.csv:
            Path(args.csv).expanduser().write_text(to_csv(rows), encoding="utf-8")
            print(f"wrote {args.csv}")
        if args.figure:
            import matplotlib

            matplotlib.use("Agg")
            plot(rows, learners).savefig(Path(args.figure).expanduser(), dpi=120)
            print(f"wrote {args.figure}")
    except (OSError, ValueError) as exc:       # an unwritable path, an unknown image format
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, why in skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} path(s) skipped; the report counts the other {learners}.", file=sys.stderr)
    return 1 if skipped else 0


def _lab(args: argparse.Namespace) -> int:
    from .lab import lab
    from .notebook_build import find_root

    folder = Path(args.dir)
    if not folder.is_absolute() and not folder.is_dir():
        try:
            folder = find_root() / folder  # `mi-course lab` from anywhere inside the repository
        except FileNotFoundError:
            pass
    try:
        return lab(folder, port=args.port, open_browser=not args.no_browser, allow_root=args.allow_root)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

    doctor()
    return 0


def _chapter_recipes() -> dict[str, Any]:
    """Trainable things a chapter ships (e.g. chapter 05's SAEs): each chapter package's ``recipes``
    module, found through the course map like its exercises, by name -> that module."""
    import importlib
    import importlib.util

    from .course import CHAPTERS

    found: dict[str, Any] = {}
    for ch in CHAPTERS:
        name = f"mi_course.{ch.package}.recipes"
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        module = importlib.import_module(name)
        found.update({recipe: module for recipe in module.RECIPES})
    return found


def _train(args: argparse.Namespace) -> int:
    from .zoo.training import RECIPES, train_and_save

    chapters = _chapter_recipes() if args.name not in RECIPES else {}
    if args.name not in RECIPES and args.name not in chapters:
        print(f"error: no recipe for {args.name!r}; trainable: {', '.join([*RECIPES, *chapters])}", file=sys.stderr)
        return 2
    try:
        if args.name in RECIPES:
            out = train_and_save(args.name, args.out, device=args.device, threads=args.threads)
        else:
            device = "cpu" if args.device == "auto" else args.device
            out = chapters[args.name].train_and_save(args.name, args.out, device=device)
    except RuntimeError as exc:  # e.g. --device cuda without a GPU
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def _check_outputs(args: argparse.Namespace) -> int:
    import os
    import tempfile

    import nbformat

    from .notebook_build import find_root
    from .notebook_compare import rerun
    from .notebook_run import load_sanitizer

    try:
        root = find_root()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = [Path(p).resolve() for p in args.notebooks] or [
        *sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb")), *sorted((root / "solutions" / "puzzles").glob("*.ipynb"))]
    patterns = load_sanitizer(root / "tests" / "sanitize.cfg")
    parameters = {"device": args.device} if args.device else None
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mi-course-check-") as tmp:
        for path in paths:
            print(f"running {path.name} ...", end=" ", flush=True)
            os.environ["MI_COURSE_PROGRESS"] = str(Path(tmp) / f"{path.stem}-progress.json")  # fresh, as when stored
            _, problems = rerun(nbformat.read(path, as_version=4), Path(tmp) / path.stem, patterns, parameters)
            print("✓ reproduces its stored outputs" if not problems else f"✗ {len(problems)} cells differ")
            for problem in problems:
                print(f"    {problem}")
            failed += bool(problems)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per job)."""
    p = argparse.ArgumentParser(prog="mi-course", description="Tools for the mi-course notebooks.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="generate chapters/ and puzzles/ from solutions/ (and binder/requirements.txt)")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    b.add_argument("--force", action="store_true", help="overwrite generated notebooks even if they have outputs")
    b.set_defaults(func=_build)

    pr = sub.add_parser("progress", help="show which exercises you have passed and which puzzles you have solved")
    pr.add_argument("--export", metavar="FILE", default=None,
                    help="write an anonymous summary to hand in to an instructor (counts only: no name, code, "
                         "answer or path)")
    pr.set_defaults(func=_progress)

    cr = sub.add_parser("class-report", help="for instructors: where the room stalls, from learners' exports")
    cr.add_argument("paths", nargs="+", metavar="FILE_OR_FOLDER", help="export files, or folders of them (*.json)")
    cr.add_argument("--figure", default=None, metavar="PATH", help="also draw the report (e.g. report.png)")
    cr.add_argument("--csv", default=None, metavar="PATH", help="also write the table as CSV")
    cr.add_argument("--min-learners", type=int, default=2,
                    help="flag an item only when at least this many learners tried it (default 2)")
    cr.set_defaults(func=_class_report)

    lab = sub.add_parser("lab", help="start JupyterLab on the chapters (only reachable from this machine)")
    lab.add_argument("--port", type=int, default=None, help="port to listen on (default: 8888, or a free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    lab.add_argument("--dir", default="chapters", help="folder to open (default: chapters)")
    lab.add_argument("--allow-root", action="store_true", default=None,
                     help="let Jupyter run as root (the default when running as root, e.g. in a container)")
    lab.set_defaults(func=_lab)

    sub.add_parser("doctor", help="report versions, device, shipped models and hub access").set_defaults(func=_doctor)

    tr = sub.add_parser("train", help="retrain a shipped model or SAE from its recipe (same weights on the same device)")
    tr.add_argument("name", help="what to train, e.g. attn-only-2l or sae-facts-l0")
    tr.add_argument("--out", default=None, help="folder to write (default: the package's own zoo folder)")
    tr.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    tr.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1; the shipped models were trained with 1)")
    tr.set_defaults(func=_train)

    co = sub.add_parser("check-outputs", help="rerun solution notebooks and compare them with their stored outputs "
                                              "(numbers within a tolerance; see mi_course/notebook_compare.py)")
    co.add_argument("notebooks", nargs="*", help="solution notebooks (default: every chapter and puzzle)")
    co.add_argument("--device", default=None, help="run them with this device parameter, e.g. cuda")
    co.set_defaults(func=_check_outputs)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mi-course`` command; returns the exit code."""
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
