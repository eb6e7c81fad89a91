"""Importing this module registers every model: the paper's checkpoints and our mini-zoo."""
from . import paper_zoo  # noqa: F401
from . import minizoo  # noqa: F401
