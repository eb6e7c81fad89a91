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

OUT_ENV = "MEDSSL_NOTEBOOK_SOURCES"   # folder to write to instead of notebooks/ (the test uses it)

PARAMETERS = '''from typing import Optional

profile: str = "mini"                  # mini: embedded default (synthetic) | smoke: CI-sized | paper: real data
data_root: Optional[str] = None           # folder with the real datasets in their publishers' layouts (paper profile)
weights_dir: Optional[str] = None         # folder with converted checkpoints (paper profile); None: profile default
cache_dir: Optional[str] = None           # features, manifests, episodes, MedSynth arrays; None: profile default
results_dir: Optional[str] = None         # where this run's result rows go; None: profile default
device: Optional[str] = None              # auto | cpu | cuda | cuda:N; None: profile default (auto)
models: Optional[list] = None             # model registry names; None: the profile's list
datasets: Optional[list] = None           # dataset registry names; None: the profile's list
analysis_models: Optional[list] = None    # models for the Q3 analyses; None: the profile's list
seed: Optional[int] = None                # seed for splits, episodes and training; None: profile default
image_size: Optional[int] = None          # MedSynth image side in pixels; None: profile default
n_episodes: Optional[int] = None          # few-shot episodes (paper: 600); None: profile default
dataset_scale: Optional[float] = None     # multiplier on MedSynth images per class; None: profile default
finetune_max_steps: Optional[int] = None  # finetune step budget (paper: 5000); None: profile default
finetune_eval_every: Optional[int] = None # steps between early-stopping checks (paper: 200); None: profile default
finetune_models: Optional[list] = None  # models to finetune (the costly protocol); None: the profile's list
dip_steps: Optional[int] = None           # deep-image-prior steps (authors: 3000); None: profile default
saliency_image_size: Optional[int] = None # occlusion saliency input side (paper: 242); None: profile default
invariance_images: Optional[int] = None   # images averaged for invariances (paper: 100); None: profile default
options: Optional[dict] = None            # switches, e.g. {"datasets": {"ichallenge_pm": {"pm_grouping": "normal_vs_myopic"}}}'''

SETUP = '''%matplotlib inline
import warnings
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue
from medssl_utils import config, report, runs

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
