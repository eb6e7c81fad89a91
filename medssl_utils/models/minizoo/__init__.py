"""The mini-zoo: small backbones this project pretrains itself (issue 8). Never the paper's checkpoints.

One narrowed CIFAR-style ResNet-18 (``mini_resnet18_w16``, 128-d features, 32 px input) pretrained on a
formula-driven natural-image stand-in (FractalDB-mini, ``corpus.py``) with the paper's method families
(``recipes.py``), several seeds each, plus two chest-X-ray (MedSynth) domain recipes. The float16 weights are
committed under ``weights/``; ``manifest.json`` records how each was made and its linear-probe accuracy, and
``train.rebuild`` retrains any of them. Only models listed in the manifest are registered, so every
registered name loads. Budget checkpoints (``budget.py``, manifest key ``budgets``) are not registered yet.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..architectures import register_architecture
from ..registry import ModelError, ModelSpec, register
from .arch import ARCH_NAME, FEATURE_DIM, INPUT_SIZE, build_mini_resnet18_w16
from .recipes import RECIPES, parse_name

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
MANIFEST_PATH = PACKAGE_DIR / "manifest.json"
RANDOM_INIT_SEEDS = (0, 1, 2)
# The paper checkpoint (or best-of row) each recipe stands in for, so tables can put the two side by side.
STANDS_FOR = {"sup": "supervised_r18", "simclr": "simclr_v1", "moco": "moco_v2", "byol": "byol", "swav": "swav",
              "pirl": "pirl", "mococxr": "moco_cxr_best", "mimic": "mimic_chexpert_best"}

register_architecture(ARCH_NAME, build_mini_resnet18_w16)


def read_manifest(path: Path = MANIFEST_PATH) -> dict:
    """The published manifest; an empty one when nothing has been built yet."""
    if not path.is_file():
        return {"models": {}, "random_baseline": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); rebuild it with "
                         "`python -m medssl_utils.models.minizoo.train --all`") from exc


def _register_all() -> None:
    for seed in RANDOM_INIT_SEEDS:
        register(ModelSpec(name=f"mini-random-s{seed}", title=f"Mini random init (seed {seed})", family="random",
                           arch=ARCH_NAME, feature_dim=FEATURE_DIM, preprocessing="imagenet",
                           input_size=INPUT_SIZE, profile="mini", method="random init", pretrain_data="none",
                           extra={"init_seed": seed, "recipe": "random", "seed": seed,
                                  "recipe_title": "Mini random init"}))
    for name, rec in sorted(read_manifest().get("models", {}).items()):
        key, seed = parse_name(name)
        recipe = RECIPES[key]
        register(ModelSpec(name=name, title=f"{recipe.title} (seed {seed})", family=recipe.family, arch=ARCH_NAME,
                           feature_dim=FEATURE_DIM, preprocessing=recipe.preprocessing, input_size=INPUT_SIZE,
                           filename=rec["file"], sha256=rec["sha256"], pretrain_data=recipe.pretrain_data,
                           method=recipe.method, profile="mini", notes=recipe.notes,
                           extra={"recipe": key, "seed": seed, "packaged_weights": str(WEIGHTS_DIR / rec["file"]),
                                  "recipe_title": recipe.title, "stands_for": STANDS_FOR.get(key)}))


_register_all()
