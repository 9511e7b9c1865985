"""mi-course: a Jupyter-first course on mechanistic interpretability.

The library backs the notebooks in ``chapters/`` and ``puzzles/``: models,
data, plots, widgets and the exercise grader (``mi_course.checks``).
"""

__version__ = "0.1.0"
