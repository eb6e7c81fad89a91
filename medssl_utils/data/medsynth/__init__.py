"""MedSynth: procedurally generated stand-ins for the paper's eight datasets. SYNTHETIC, not medical data.

Each set keeps the label structure and protocol role of the real dataset it stands for (paper Table 1
and section 4.2) so every protocol runs end to end without the real data. Importing this package
registers the sets.
"""
from __future__ import annotations

from . import registry_entries  # noqa: F401
from .grid import example_grid

__all__ = ["example_grid"]
