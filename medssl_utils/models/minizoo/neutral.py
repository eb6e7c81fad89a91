"""The neutral probe: how good are a backbone's frozen features on classes no recipe was trained on?

The source-label probe favours the supervised recipe by construction (its loss was those labels). The
neutral probe uses a second FractalDB-style corpus drawn with another seed, so its IFS systems (the classes)
are new to every recipe, supervised or not, and none of its images was seen in pretraining. Two read-outs on
frozen pooled features: kNN (k = 20, cosine similarity, majority vote, ties to the larger summed similarity)
and the same standardised logistic regression as the source probe. ``neutral_scores`` is arrays in, numbers
out; ``neutral_probe`` runs it on a module.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

NEUTRAL_SEED = 20_017        # not 0 (the pretraining corpus): other IFS systems, other images
NEUTRAL_CLASSES = 50
NEUTRAL_PER_CLASS = 50       # 30 to fit on, 20 held out per class
NEUTRAL_HELDOUT = 20
KNN_K = 20

ABOUT = (f"neutral probe on frozen pooled features: a FractalDB-style corpus drawn with seed {NEUTRAL_SEED} "
         f"({NEUTRAL_CLASSES} new IFS classes, {NEUTRAL_PER_CLASS - NEUTRAL_HELDOUT} fit + {NEUTRAL_HELDOUT} test "
         f"images each; no recipe trained on these classes or images); 'knn' = k={KNN_K} nearest neighbours by "
         "cosine similarity, majority vote; 'linear' = StandardScaler + multinomial LogisticRegression (C=1.0), "
         "as the source probe.")


def neutral_set():
    """(fit images, fit labels, test images, test labels, n_classes, description): the ``Sources`` entry."""
    from .corpus import make_corpus
    from .train import to_tensor

    c = make_corpus(NEUTRAL_SEED, n_classes=NEUTRAL_CLASSES, n_per_class=NEUTRAL_PER_CLASS,
                    n_heldout=NEUTRAL_HELDOUT)
    xtr, ytr = c.split(False)
    xte, yte = c.split(True)
    desc = {"name": "FractalDB-mini neutral", "fingerprint": c.fingerprint, "seed": NEUTRAL_SEED,
            "n_train": int(len(ytr)), "n_heldout": int(len(yte)), "n_classes": c.n_classes}
    return to_tensor(xtr), torch.from_numpy(ytr), to_tensor(xte), torch.from_numpy(yte), c.n_classes, desc


def knn_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray,
                 k: int = KNN_K) -> float:
    """Cosine kNN: each test image takes the majority label of its ``k`` most similar fit images."""
    def unit(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, np.float64)
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)

    sim = unit(f_test) @ unit(f_train).T
    k = min(k, sim.shape[1])
    nn_idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    classes, y_idx = np.unique(y_train, return_inverse=True)
    votes = np.zeros((len(f_test), len(classes)))
    sims = np.zeros_like(votes)
    rows = np.repeat(np.arange(len(f_test)), k)
    np.add.at(votes, (rows, y_idx[nn_idx].ravel()), 1.0)
    np.add.at(sims, (rows, y_idx[nn_idx].ravel()), (1 + np.take_along_axis(sim, nn_idx, 1).ravel()) / 2)
    pred = classes[np.argmax(votes + sims / (k + 1.0), axis=1)]   # summed similarity < 1 vote: breaks ties only
    return float((pred == np.asarray(y_test)).mean())


def neutral_scores(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray) -> dict:
    """{'knn': accuracy, 'linear': accuracy} of frozen features (rounded like the source probe)."""
    from .train import linear_probe

    return {"knn": round(knn_accuracy(f_train, y_train, f_test, y_test), 4),
            "linear": round(linear_probe(f_train, y_train, f_test, y_test), 4)}


def neutral_probe(module: nn.Module, sources) -> dict:
    """The neutral probe of ``module`` on ``sources.get('neutral')`` (features on the CPU, like the source probe)."""
    from .train import extract

    xtr, ytr, xte, yte, _, _ = sources.get("neutral")
    return neutral_scores(extract(module, xtr), ytr.numpy(), extract(module, xte), yte.numpy())


def probe_published(names: list[str] | None, out, manifest, sources, progress: bool = True) -> dict:
    """Neutral probe of committed checkpoints (default: every 1x model and random init) into the manifest's
    ``neutral_probe`` key; the weights must match their manifest hash, and no other key is touched."""
    from ...errors import MedsslError
    from ...storage import sha256_file
    from .arch import build_mini_resnet18_w16
    from .train import load_half, manifest_lock

    from pathlib import Path

    data = json.loads(Path(manifest).read_text())
    models, randoms = data.get("models", {}), data.get("random_baseline", {})
    names = list(names) if names else sorted(models) + sorted(randoms)
    results: dict[str, dict] = {"models": {}, "random_baseline": {}}
    for name in names:
        if name in randoms:
            module, tag, where = _random_init(name), randoms[name]["weights_hash"], "random_baseline"
        elif name in models:
            path, rec = Path(out) / models[name]["file"], models[name]
            if not path.is_file() or sha256_file(path) != rec["sha256"]:
                raise MedsslError(f"{path}: missing or not the manifest's {name} (sha256 differs)")
            module, tag, where = build_mini_resnet18_w16(), rec["sha256"], "models"
            module.load_state_dict(load_half(path))
        else:
            raise MedsslError(f"{name}: not a published 1x mini-zoo model or random-init baseline in {manifest}")
        results[where][name] = {**neutral_probe(module, sources), "weights": tag}
        if progress:
            print(f"{name}: neutral {results[where][name]}", flush=True)
    with manifest_lock(Path(manifest)) as data:
        entry = data.setdefault("neutral_probe", {})
        entry["about"], entry["corpus"] = ABOUT, sources.get("neutral")[5]
        for where in ("models", "random_baseline"):
            entry.setdefault(where, {}).update(results[where])
        return entry


def _random_init(name: str) -> nn.Module:
    """Initialised exactly as ``load_backbone`` does (as ``train.random_baseline``)."""
    from ..checkpoints import load_canonical
    from ..registry import get_spec
    from .arch import build_mini_resnet18_w16

    module = build_mini_resnet18_w16()
    load_canonical(get_spec(name), None, module)
    return module


def neutral_table(data: dict) -> list[dict]:
    """Per recipe (and random init): seeds, source-task probe and neutral kNN / linear, as stored."""
    from .recipes import RECIPES

    entry = data.get("neutral_probe", {})
    rows: dict[str, dict] = {}
    for name, rec in data.get("models", {}).items():
        if name not in entry.get("models", {}):
            continue
        source = "cxr" if any(st.data == "cxr" for st in RECIPES[rec["recipe"]].stages) else "fractal"
        r = rows.setdefault(rec["recipe"], {"recipe": rec["recipe"], "source_task": source, "seeds": [],
                                            "source": [], "knn": [], "linear": []})
        r["seeds"].append(rec["train_seed"])
        r["source"].append(rec["probe"][source])
        r["knn"].append(entry["models"][name]["knn"])
        r["linear"].append(entry["models"][name]["linear"])
    for name, rec in data.get("random_baseline", {}).items():
        if name in entry.get("random_baseline", {}):
            r = rows.setdefault("random", {"recipe": "random", "source_task": "fractal", "seeds": [], "source": [],
                                           "knn": [], "linear": []})
            r["seeds"].append(rec["init_seed"])
            r["source"].append(rec["probe"]["fractal"])
            r["knn"].append(entry["random_baseline"][name]["knn"])
            r["linear"].append(entry["random_baseline"][name]["linear"])
    return list(rows.values())
