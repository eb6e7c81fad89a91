"""Shared helpers for writing the source notebooks with nbformat (used by the per-notebook builders).

The builders (``tools/build_*.py``) are the source of truth; ``notebooks/`` is their output, and
``tests/test_notebook_sources.py`` checks that rebuilding reproduces it byte for byte. Cell ids are
derived from each cell's position and text, so an unchanged builder writes an unchanged notebook (and its
stamp does not change, so ``medssl notebooks`` does not re-execute it).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nbformat

from medssl_utils import config

OUT_ENV = "MEDSSL_NOTEBOOK_SOURCES"   # folder to write to instead of notebooks/ (the test uses it)

PARAMETERS = config.parameters_source()   # one declaration per parameter: medssl_utils.config.Config

SETUP = '''%matplotlib inline
import warnings
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue
from medssl_utils import config
from medssl_utils.pipeline import grid
from medssl_utils.book import report

warnings.filterwarnings("ignore", category=UserWarning, module="torch")
cfg = config.from_namespace(globals())
print(config.describe(cfg))'''


def md(text: str, tags=()):
    c = nbformat.v4.new_markdown_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def code(text: str, tags=()):
    c = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def parameters_cell():
    return code(PARAMETERS, tags=["parameters", "hide-input"])


def setup_cell():
    return code(SETUP, tags=["hide-input"])


def write(cells, name: str) -> Path:
    """Write ``notebooks/<name>.ipynb`` with deterministic cell ids."""
    nb = notebook(cells)
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:03d}-" + hashlib.sha1(cell.source.encode()).hexdigest()[:8]
    out = Path(os.environ.get(OUT_ENV) or Path(__file__).resolve().parents[1] / "notebooks") / f"{name}.ipynb"
    nbformat.write(nb, out)
    return out
