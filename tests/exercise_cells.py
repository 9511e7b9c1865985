"""Pull exercise cells out of a chapter notebook and run them, to check solutions and stubs directly."""

from __future__ import annotations

from pathlib import Path

import nbformat
import torch

from mi_course.launch import INSTALL_TAG
from mi_course.notebook_build import CODE_BEGIN

def exercise_objects(notebook: Path) -> list[tuple[str | None, str, object]]:
    """Run the parameters and setup cells, then each exercise cell with ``check`` swapped for a recorder.

    Returns (explicit exercise id or None, object name, the object the cell passed to check).
    """
    nb = nbformat.read(notebook, as_version=4)
    source_nb = nbformat.read(Path(str(notebook).replace("chapters", "solutions")), as_version=4)
    solution_cells = [c for c in source_nb.cells if c.cell_type == "code" and CODE_BEGIN in c.source]
    ids = {c.id for c in solution_cells}
    setup = [c for c in nb.cells if c.cell_type == "code"                # parameters, setup (not the install cell,
             and INSTALL_TAG not in c.metadata.get("tags", [])][:2]     # which only the generated notebook has)
    namespace: dict = {}
    grad_was_enabled = torch.is_grad_enabled()   # a chapter's setup may switch autograd off, globally
    try:
        for cell in setup:
            exec(compile(cell.source, f"<{cell.id}>", "exec"), namespace)
    finally:
        torch.set_grad_enabled(grad_was_enabled)
    recorded: list[tuple[str | None, str, object]] = []

    def recorder(obj, exercise_id=None):
        recorded.append((exercise_id, getattr(obj, "__name__", repr(type(obj))), obj))
        return obj

    for cell in nb.cells:
        if cell.id in ids:
            namespace["check"] = recorder
            try:
                exec(compile(cell.source, f"<{cell.id}>", "exec"), namespace)
            except NotImplementedError:      # a stub called after its check (the recorder passes it on)
                pass
    return recorded
