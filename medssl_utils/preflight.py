"""Everything that can be checked before the first image is read, checked then, with one line per problem.

Three levels, cheapest first, so that a long run never fails at hour two on something knowable at second one:

* ``check_options(cfg)``: the ``options`` mapping (sections, switch names and the combinations that cannot
  work, e.g. a saliency stride larger than the patch at this image size). Pure; ``config.resolve`` calls it.
* ``check_files(cfg, protocols)``: the folders and weight files the run will open exist.
* ``check_data(cfg, protocols)``: each dataset's index loads (the loader's own layout checks), the few-shot
  classes are large enough for an episode, and, for real data under ``on_bad_image: raise``, every image file
  is readable. The image scan is stamped per dataset fingerprint in the cache, so it costs one pass, once.

``preflight`` runs all three; ``medssl check``, ``medssl run`` and ``medssl notebooks`` call it before work.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .config import ConfigError
from .errors import MedsslError
from .storage import atomic_write_text

if TYPE_CHECKING:
    from .config import Config

OPTION_SECTIONS = ("fewshot", "linear", "finetune", "analysis", "datasets", "models")
FEWSHOT_SWITCHES = {"pool": ("all", "authors"), "resize": ("paper", "authors")}
FINETUNE_SWITCHES = ("lr", "momentum", "nesterov", "weight_decay", "batch_size", "patience", "restore_best",
                     "augment", "amp", "eval_batch_size", "schedule")
IMAGE_SCAN_VERSION = 1


class PreflightError(ConfigError):
    """Something the run would have found later: the file, folder or parameter, and what was expected."""


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PreflightError(f"parameter '{where}' must be a mapping, got {value!r}")
    return value


def check_options(cfg: "Config") -> None:
    """The ``options`` sections and their switches; legal combinations only."""
    from .pipeline.analyses import analysis_options
    from .analysis.saliency import scaled_patch
    from .data.registry import get_spec as dataset_spec
    from .protocols.linear import LinearProbeError, LinearSettings

    opts = _mapping(cfg.options, "options")
    unknown = sorted(set(opts) - set(OPTION_SECTIONS))
    if unknown:
        raise PreflightError(f"parameter 'options': unknown section(s) {unknown}; expected some of "
                             f"{', '.join(OPTION_SECTIONS)}")
    for key, value in _mapping(opts.get("fewshot"), "options.fewshot").items():
        if key not in FEWSHOT_SWITCHES:
            raise PreflightError(f"parameter 'options.fewshot': unknown switch {key!r}; expected some of "
                                 f"{sorted(FEWSHOT_SWITCHES)}")
        if value not in FEWSHOT_SWITCHES[key]:
            raise PreflightError(f"parameter 'options.fewshot.{key}': {value!r}; expected one of "
                                 f"{', '.join(FEWSHOT_SWITCHES[key])}")
    try:
        LinearSettings.from_options(_mapping(opts.get("linear"), "options.linear"))
    except (LinearProbeError, TypeError) as exc:
        raise PreflightError(f"parameter 'options.linear': {exc}") from None
    bad = sorted(set(_mapping(opts.get("finetune"), "options.finetune")) - set(FINETUNE_SWITCHES))
    if bad:
        raise PreflightError(f"parameter 'options.finetune': unknown switch(es) {bad}; expected some of "
                             f"{', '.join(FINETUNE_SWITCHES)}")
    _check_model_and_finetune_values(cfg, opts)
    for name, switches in _mapping(opts.get("datasets"), "options.datasets").items():
        if name not in cfg.datasets:
            raise PreflightError(f"parameter 'options.datasets': {name!r} is not one of this run's datasets "
                                 f"({', '.join(cfg.datasets)})")
        spec = dataset_spec(name)
        extra = sorted(set(_mapping(switches, f"options.datasets.{name}")) - set(spec.options))
        if extra:
            raise PreflightError(f"parameter 'options.datasets.{name}': unknown option(s) {extra}; expected some of "
                                 f"{sorted(spec.options) or 'none (this dataset has no options)'}")
    try:
        analysis = analysis_options(cfg)
    except MedsslError as exc:
        raise PreflightError(f"parameter {exc}") from None
    stride = _mapping(analysis.get("saliency"), "options.analysis.saliency").get("stride")
    if stride is not None:
        patch = scaled_patch(cfg.saliency_image_size)
        if not isinstance(stride, int) or not 1 <= stride <= patch:
            raise PreflightError(f"parameter 'options.analysis.saliency.stride': {stride!r}; expected an integer "
                                 f"from 1 to the patch side, which is {patch} px at saliency_image_size "
                                 f"{cfg.saliency_image_size} (10 px at the paper's 242)")


def _check_model_and_finetune_values(cfg: "Config", opts: dict) -> None:
    """``options.finetune`` schedule/augment values and ``options.models.<model>.normalisation`` (issue #15)."""
    from .models.preprocessing import PREPROCESSING
    from .protocols.finetune import AUGMENT_MODES, SCHEDULES

    finetune = _mapping(opts.get("finetune"), "options.finetune")
    for key, allowed in (("schedule", SCHEDULES), ("augment", (*AUGMENT_MODES, None))):
        if key in finetune and finetune[key] not in allowed:
            raise PreflightError(f"parameter 'options.finetune.{key}': {finetune[key]!r}; expected one of "
                                 f"{', '.join('null' if a is None else a for a in allowed)}")
    run_models = set(cfg.models) | set(cfg.finetune_models) | set(cfg.analysis_models)
    for name, switches in _mapping(opts.get("models"), "options.models").items():
        if name not in run_models:
            raise PreflightError(f"parameter 'options.models': {name!r} is not one of this run's models "
                                 f"({', '.join(sorted(run_models))})")
        switches = _mapping(switches, f"options.models.{name}")
        extra = sorted(set(switches) - {"normalisation"})
        if extra:
            raise PreflightError(f"parameter 'options.models.{name}': unknown option(s) {extra}; expected "
                                 "'normalisation'")
        value = switches.get("normalisation")
        if value is not None and value not in PREPROCESSING:
            raise PreflightError(f"parameter 'options.models.{name}.normalisation': {value!r}; expected one of "
                                 f"{', '.join(PREPROCESSING)} (or null: the model's own)")


def _needs_weights(name: str) -> bool:
    from .models.registry import get_spec

    extra = get_spec(name).extra
    return "init_seed" not in extra and not extra.get("packaged_weights")


def check_files(cfg: "Config", protocols: Iterable[str] = ("fewshot", "linear", "finetune"), *,
                models: Iterable[str] | None = None, datasets: Iterable[str] | None = None) -> None:
    """The dataset folders under ``data_root`` and the converted weights under ``weights_dir``."""
    from .data.registry import get_spec as dataset_spec
    from .models.checkpoints import canonical_path
    from .models.registry import get_spec as model_spec

    real = [dataset_spec(d) for d in (datasets or cfg.datasets)
            if not dataset_spec(d).synthetic and not dataset_spec(d).root]   # a user dataset names its own folder
    missing = [s for s in real if cfg.data_root is None or not (Path(cfg.data_root) / s.folder).is_dir()]
    if missing:
        where = cfg.data_root or "data_root (unset)"
        raise PreflightError(f"data_root {where}: no folder for {len(missing)} of {len(real)} real dataset(s): "
                             f"{', '.join(f'{s.folder}/ ({s.name})' for s in missing)}; expected one folder per "
                             "dataset in its publisher's layout (datasets page)")
    if models is None:
        models = set(cfg.models) | set(cfg.analysis_models)
        if "finetune" in set(protocols):
            models |= set(cfg.finetune_models)
    need = sorted(m for m in models if _needs_weights(m))
    if need and cfg.weights_dir is None:
        raise PreflightError(f"parameter 'weights_dir' is unset but {len(need)} model(s) need converted weights "
                             f"({', '.join(need[:4])}{', ...' if len(need) > 4 else ''}); run `medssl weights fetch "
                             "--weights-dir DIR` (or `weights convert`) and pass weights_dir=DIR")
    absent = [m for m in need if not canonical_path(model_spec(m), cfg.weights_dir).is_file()]
    if absent:
        raise PreflightError(f"weights_dir {cfg.weights_dir}: converted weights missing for {len(absent)} model(s): "
                             f"{', '.join(f'{m}.pt' for m in absent[:6])}{', ...' if len(absent) > 6 else ''}; "
                             "run `medssl weights status --weights-dir DIR` to see what to fetch or convert")


def check_data(cfg: "Config", protocols: Iterable[str] = ("fewshot", "linear", "finetune"), *,
               datasets: Iterable[str] | None = None, scan_images: bool = True, progress: bool = False) -> None:
    """Each dataset's index, its few-shot classes, and (real data) its image files."""
    from .data.registry import get_spec as dataset_spec
    from .pipeline import inputs

    protocols = set(protocols)
    for name in (datasets or cfg.datasets):
        ds = inputs.dataset(cfg, name)
        inputs.manifest(cfg, name)
        if "fewshot" in protocols:
            inputs.episodes(cfg, name)          # too-small classes fail here, naming the dataset and classes
        policy = {**dataset_spec(name).options, **cfg.options.get("datasets", {}).get(name, {})}.get("on_bad_image")
        if scan_images and policy == "raise" and hasattr(ds, "paths"):
            scan_images_once(cfg, ds, progress=progress)


def scan_images_once(cfg: "Config", ds, *, progress: bool = False) -> None:
    """Read every listed image file once per dataset version; the stamp remembers a clean pass."""
    from .data.real._common import image_problem
    from .progress import bar

    digest = hashlib.sha256(f"{IMAGE_SCAN_VERSION}|{ds.fingerprint}|{len(ds.ids)}|{ds.ids[:1]}|{ds.ids[-1:]}"
                            .encode()).hexdigest()[:20]
    stamp = Path(cfg.cache_dir) / "image-scans" / f"{ds.name}-{digest}.json"
    if stamp.is_file():
        return
    bad = []
    for i, path in zip(ds.ids, bar(ds.paths, desc=f"checking images {ds.name}", enabled=progress, leave=False)):
        why = image_problem(path)
        if why is not None:
            bad.append((i, f"{path}: {why}"))
    if bad:
        shown = "; ".join(w for _, w in bad[:3])
        raise PreflightError(f"dataset {ds.name!r}: {len(bad)} unreadable image(s), e.g. {shown}; replace them, or set "
                             f"options.datasets.{ds.name}.on_bad_image: skip to leave them out (nothing was "
                             "extracted yet)")
    atomic_write_text(stamp, json.dumps({"dataset": ds.name, "images": len(ds.ids), "fingerprint": ds.fingerprint}))


def before_units(cfg: "Config", units, *, progress: bool = False) -> None:
    """What the grid checks before its first unit: the files and data those units need. A pretraining-source
    image (Q3) is not a registry dataset: for its units, only the models' weights."""
    from .data.source_images import is_source

    units = list(units)
    data_units = [u for u in units if not is_source(u.dataset)]
    if data_units:
        protocols = sorted({u.protocol for u in data_units})
        datasets = sorted({u.dataset for u in data_units})
        check_files(cfg, protocols, models={u.model for u in data_units}, datasets=datasets)
        check_data(cfg, protocols, datasets=datasets, progress=progress)
    source_units = [u for u in units if is_source(u.dataset)]
    if source_units:
        check_files(cfg, sorted({u.protocol for u in source_units}), models={u.model for u in source_units},
                    datasets=cfg.datasets)


def preflight(cfg: "Config", protocols: Iterable[str] = ("fewshot", "linear", "finetune"), *,
              data: bool = True, progress: bool = False) -> None:
    protocols = list(protocols)
    check_options(cfg)
    check_files(cfg, protocols)
    if data:
        check_data(cfg, protocols, progress=progress)
