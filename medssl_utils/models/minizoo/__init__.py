"""The mini-zoo: small backbones this project pretrains itself (issue 8). Never the paper's checkpoints.

One narrowed CIFAR-style ResNet-18 (``mini_resnet18_w16``, 128-d features, 32 px input) pretrained on a
formula-driven natural-image stand-in (FractalDB-mini, ``corpus.py``) with the paper's method families
(``recipes.py``), several seeds each, plus two chest-X-ray (MedSynth) domain recipes. The float16 weights are
committed under ``weights/``; ``manifest.json`` records how each was made and its linear-probe accuracy, and
``train.rebuild`` retrains any of them. Only models listed in the manifest are registered, so every
registered name loads. Budget checkpoints (``budget.py``, manifest key ``budgets``: the same recipe trained on
4x or 16x the images) register as ``mini-<recipe>-b<B>-s<seed>``; every mini model carries ``budget`` and
``images_seen`` in ``extra`` so the budget page can put them on one axis.
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


def images_seen(rec: dict, records: dict | None = None) -> int:
    """Training images drawn (a SimCLR pair counts once): steps x batch per stage, plus those of the checkpoint
    it was initialised from (MoCo-CXR-like recipes start from the supervised one) when ``records`` has it."""
    own = rec["images_seen"] if "images_seen" in rec else sum(st["steps"] * st["batch_size"] for st in rec["stages"])
    parent = (rec.get("init_from") or {}).get("name")
    return int(own) + (images_seen(records[parent], records) if records and parent in records else 0)


def _spec(name: str, rec: dict, budget: int, records: dict | None = None) -> ModelSpec:
    key, seed = parse_name(name) if budget == 1 else (rec["recipe"], rec["train_seed"])
    recipe = RECIPES[key]
    title = recipe.title if budget == 1 else f"{recipe.title} x{budget}"
    return ModelSpec(name=name, title=f"{title} (seed {seed})", family=recipe.family, arch=ARCH_NAME,
                     feature_dim=FEATURE_DIM, preprocessing=recipe.preprocessing, input_size=INPUT_SIZE,
                     filename=rec["file"], sha256=rec["sha256"], pretrain_data=recipe.pretrain_data,
                     method=recipe.method, profile="mini", notes=recipe.notes,
                     extra={"recipe": key, "seed": seed, "packaged_weights": str(WEIGHTS_DIR / rec["file"]),
                            "recipe_title": title, "stands_for": STANDS_FOR.get(key), "budget": budget,
                            "images_seen": images_seen(rec, records), "group": key if budget == 1 else f"{key}-b{budget}"})


def _register_all() -> None:
    for seed in RANDOM_INIT_SEEDS:
        register(ModelSpec(name=f"mini-random-s{seed}", title=f"Mini random init (seed {seed})", family="random",
                           arch=ARCH_NAME, feature_dim=FEATURE_DIM, preprocessing="imagenet",
                           input_size=INPUT_SIZE, profile="mini", method="random init", pretrain_data="none",
                           extra={"init_seed": seed, "recipe": "random", "seed": seed, "budget": 0, "images_seen": 0,
                                  "recipe_title": "Mini random init"}))
    manifest = read_manifest()
    records = {**manifest.get("models", {}), **manifest.get("budgets", {})}
    for name, rec in sorted(manifest.get("models", {}).items()):
        register(_spec(name, rec, 1, records))
    for name, rec in sorted(manifest.get("budgets", {}).items()):
        if (WEIGHTS_DIR / rec["file"]).is_file():     # a record whose file is not committed is not a model
            register(_spec(name, rec, int(rec["budget"]), records))


_register_all()
