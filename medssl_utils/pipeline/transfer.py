"""The transfer protocols of paper section 4.3 as grid units: few-shot, linear and finetune (Q1 and Q2).

Each unit reads its inputs through ``inputs``, hands arrays to ``protocols/`` (which never open files or read
parameters) and returns result rows plus per-item outcomes for the paired tests. The headline metric carries
a bootstrap 95% CI; accuracy and (binary tasks) AUC come along, all in percent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import features as feat
from ..config import Config
from ..data.base import ImageDataset
from ..data.registry import get_spec as dataset_spec
from ..protocols import fewshot
from ..protocols.linear import LinearSettings
from . import inputs
from .units import Protocol, Settings, Unit, base_row


# ---------------------------------------------------------------- settings: a changed value reruns a unit
@dataclass(frozen=True)
class FewShotSettings(Settings):
    episodes: int
    switches: dict = field(default_factory=dict)       # options.fewshot (pool, resize: the authors' code)

    @classmethod
    def from_config(cls, cfg: Config) -> "FewShotSettings":
        return cls(cfg.n_episodes, dict(cfg.options.get("fewshot", {}) or {}))


@dataclass(frozen=True)
class LinearUnitSettings(Settings):
    probe: LinearSettings
    n_boot: int                                        # cfg.n_boot: resamples of the test-metric CI
    switches: dict = field(default_factory=dict)       # options.linear, as given

    @classmethod
    def from_config(cls, cfg: Config) -> "LinearUnitSettings":
        opts = cfg.options.get("linear")
        return cls(LinearSettings.from_options(opts), cfg.n_boot, dict(opts or {}))

    def as_dict(self) -> dict:
        constants = self.probe.as_dict()
        constants.pop("blas_threads")   # speed only: results do not depend on it (tests/test_linear_determinism.py)
        return json.loads(json.dumps({"constants": constants, "n_boot": self.n_boot, "switches": self.switches}))


@dataclass(frozen=True)
class FinetuneSettings(Settings):
    max_steps: int
    eval_every: int
    n_boot: int                                        # cfg.n_boot: resamples of the test-metric CI
    switches: dict = field(default_factory=dict)       # options.finetune (schedule, augment, batch_size, ...)

    @classmethod
    def from_config(cls, cfg: Config) -> "FinetuneSettings":
        return cls(cfg.finetune_max_steps, cfg.finetune_eval_every, cfg.n_boot,
                   dict(cfg.options.get("finetune", {}) or {}))


# ---------------------------------------------------------------- rows
def _metric_rows(cfg: Config, unit: Unit, key: str, metric: str, y_true: np.ndarray, y_pred: np.ndarray,
                 proba: np.ndarray, extra: dict, settings: LinearUnitSettings | FinetuneSettings) -> list[dict]:
    """Headline metric with a bootstrap 95% CI, plus accuracy and (binary tasks) AUC, all in percent."""
    from .. import stats

    base = base_row(cfg, unit, key)
    extra = json.dumps({**extra, "settings": settings.as_dict()})
    scores = [(m, {"y_pred": y_pred}) for m in [metric] + (["accuracy"] if metric != "accuracy" else [])]
    if proba.shape[1] == 2 and len(np.unique(y_true)) == 2:
        scores.append(("auc", {"y_score": proba[:, 1]}))
    rows = []
    for m, given in scores:
        ci = stats.bootstrap_ci(y_true=y_true, metric=m, seed=cfg.seed, n_boot=settings.n_boot, **given)
        rows.append(base | {"metric": m, "value": 100 * ci.estimate, "ci_low": 100 * ci.low,
                            "ci_high": 100 * ci.high, "n": len(y_true), "extra": extra})
    return rows


# ---------------------------------------------------------------- the three units
def run_fewshot_unit(cfg: Config, unit: Unit, settings: FewShotSettings) -> tuple[list[dict], dict]:
    fs_inputs = inputs.fewshot_inputs(cfg, unit.dataset)
    fs = inputs.features(cfg, unit.model, unit.dataset, small_resize=fs_inputs.small_resize)
    ep = inputs.episodes(cfg, unit.dataset)
    acc = fewshot.episode_accuracies(fs.features, ep) * 100
    mean, half = fewshot.mean_ci95(acc)
    e, w, k, q = ep.shape
    extra = {"n_way": w, "n_shot": k, "n_query": q, "settings": settings.as_dict()} | \
        ({"inputs": fs_inputs.tag} if fs_inputs.tag else {})
    row = base_row(cfg, unit, fs.key) | {
        "metric": "accuracy", "value": mean, "ci_low": mean - half, "ci_high": mean + half, "n": e,
        "extra": json.dumps(extra)}
    return [row], {"episode_accuracy": acc}


def run_linear_unit(cfg: Config, unit: Unit, settings: LinearUnitSettings) -> tuple[list[dict], dict]:
    from ..protocols.linear import linear_probe

    fs = inputs.features(cfg, unit.model, unit.dataset)
    sp = inputs.split_rows(cfg, unit.dataset, fs)
    metric = dataset_spec(unit.dataset).metric
    res = linear_probe(*sp["train"], *sp["val"], *sp["test"], metric=metric, settings=settings.probe)
    rows = _metric_rows(cfg, unit, fs.key, metric, sp["test"][1], res.test_pred, res.test_proba, res.summary(),
                        settings)
    return rows, {"test_correct": res.test_correct.astype(np.uint8)}


def _image_split(ds: ImageDataset, index: np.ndarray, preprocess):
    """(preprocessed tensor, label) pairs of one split, for finetuning; the raw image stays reachable, so the
    training split can take the authors' augmentation (``options.finetune.augment: authors``)."""
    from ..protocols.finetune import ImageSplit

    index = np.asarray(index, dtype=np.int64)
    return ImageSplit(lambda i: ds.image(int(index[i])), np.asarray(ds.labels)[index], preprocess)


def run_finetune_unit(cfg: Config, unit: Unit, settings: FinetuneSettings) -> tuple[list[dict], dict]:
    from ..models.architectures import finetune_batch_size
    from ..protocols.finetune import finetune

    ds = inputs.dataset(cfg, unit.dataset)
    man, mh = inputs.manifest(cfg, unit.dataset)
    bb = inputs.backbone(cfg, unit.model)
    pos = {i: k for k, i in enumerate(ds.ids)}
    splits = {s: _image_split(ds, np.array([pos[i] for i in man.id[man.split == s]]), bb.preprocess)
              for s in ("train", "val", "test")}
    spec = dataset_spec(unit.dataset)
    switches = {"batch_size": finetune_batch_size(bb.spec.arch), **settings.switches}
    res = finetune(bb.module, bb.feature_dim, len(ds.classes), splits["train"], splits["val"], splits["test"],
                   max_steps=settings.max_steps, eval_every=settings.eval_every, metric=spec.metric,
                   device=cfg.device, seed=cfg.seed, progress=False, **switches)
    key = feat.cache_key(bb, ds, mh)
    rows = _metric_rows(cfg, unit, key, spec.metric, res.test_labels, res.test_pred, res.test_proba, res.summary(),
                        settings)
    hist = res.history_frame().to_numpy(dtype=np.float64)
    return rows, {"test_correct": res.test_correct.astype(np.uint8), "history": hist,
                  "learning_rates": res.learning_rates.astype(np.float64)}


# ---------------------------------------------------------------- the records
def _run_datasets(cfg: Config, datasets) -> list[str]:
    return list(datasets or cfg.datasets)


def _fewshot_key(cfg: Config, unit: Unit) -> str:
    small = inputs.fewshot_inputs(cfg, unit.dataset).small_resize
    return inputs.feature_key(cfg, unit.model, unit.dataset, small_resize=small)


def _plain_key(cfg: Config, unit: Unit) -> str:
    return inputs.feature_key(cfg, unit.model, unit.dataset)


def _manyshot(protocol: str):
    return lambda cfg, model, data: protocol in dataset_spec(data).manyshot


PROTOCOLS = (
    Protocol("fewshot", "Q1", run_fewshot_unit, FewShotSettings.from_config, lambda cfg: cfg.models, _run_datasets,
             lambda cfg, model, data: True, _fewshot_key),
    Protocol("linear", "Q1", run_linear_unit, LinearUnitSettings.from_config, lambda cfg: cfg.models, _run_datasets,
             _manyshot("linear"), _plain_key),
    Protocol("finetune", "Q1", run_finetune_unit, FinetuneSettings.from_config, lambda cfg: cfg.models,
             _run_datasets, lambda cfg, model, data: _manyshot("finetune")(cfg, model, data)
             and model in cfg.finetune_models, _plain_key),
)
