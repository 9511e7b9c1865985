"""The course's one-line model loader, under its short public name.

    >>> from mi_course import models
    >>> model = models.load("attn-only-2l")

The code lives in :mod:`mi_course.zoo.models`; this module only re-exports its public names.
"""

from .zoo.models import *  # noqa: F401,F403
from .zoo.models import __all__  # noqa: F401
