"""Run configuration: a profile YAML plus notebook/CLI overrides, validated once, before any work.

A profile (``profiles/<name>.yml``) is a flat mapping of the notebooks' parameters, so the same file
works with ``papermill -f``. ``resolve`` fills every parameter left as ``None`` from the profile,
checks everything, and returns a frozen ``Config`` whose plain values travel to every stage.
"""
from __future__ import annotations

from .errors import MedsslError

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILES = ("mini", "smoke", "paper")
REHEARSAL_MARKER = "MEDSSL_REHEARSAL.json"   # written by `medssl rehearse` into its fabricated data_root


class ConfigError(MedsslError):
    """One clear line saying which parameter is wrong and what was expected."""


@dataclass(frozen=True)
class Param:
    """How one parameter is declared, checked and explained: the notebooks' parameters cell, the methods page's
    parameters table and profile validation are all generated from these records (one declaration each)."""
    kind: str          # one of KINDS
    help: str
    paper: str = ""    # the paper's value (or the authors'), where it has one


KINDS = {  # kind: (annotation in the parameters cell, what a value must be)
    "profile": ("str", f"one of {', '.join(PROFILES)}"),
    "folder": ("Optional[str]", "an existing folder, or null"),
    "path": ("Optional[str]", "a folder path"),
    "device": ("Optional[str]", "auto, cpu, cuda or cuda:N"),
    "names": ("Optional[list]", "a non-empty list of registry names"),
    "integer": ("Optional[int]", "an integer"),
    "count": ("Optional[int]", "a positive integer"),
    "number": ("Optional[float]", "a number"),
    "mapping": ("Optional[dict]", "a mapping"),
    "files": ("Optional[list]", "YAML file path(s), or null"),
    "executor": ("Optional[str]", "local, processes, submitit or ray"),
}


def _param(kind: str, help: str, paper: str = "", **kw):
    return field(metadata={"param": Param(kind, help, paper)}, **kw)


@dataclass(frozen=True)
class Config:
    profile: str = _param("profile", "mini: embedded default (synthetic) | smoke: CI-sized | paper: real data")
    data_root: Path | None = _param("folder", "folder with the real datasets in their publishers' layouts (paper "
                                              "profile)")
    weights_dir: Path | None = _param("folder", "folder with converted checkpoints (paper profile)")
    cache_dir: Path = _param("path", "features, manifests, episodes, MedSynth arrays")
    results_dir: Path = _param("path", "where this run's result rows go")
    device: str = _param("device", "auto | cpu | cuda | cuda:N (auto: the GPU when present)")
    models: tuple[str, ...] = _param("names", "model registry names")
    datasets: tuple[str, ...] = _param("names", "dataset registry names")
    seed: int = _param("integer", "seed for splits, episodes and training", "not stated; authors 0 and 42")
    image_size: int = _param("count", "MedSynth image side in pixels")
    n_episodes: int = _param("count", "few-shot episodes", "600")
    dataset_scale: float = _param("number", "multiplier on MedSynth images per class")
    finetune_max_steps: int = _param("count", "finetune step budget", "5000")
    finetune_eval_every: int = _param("count", "steps between early-stopping checks", "200")
    finetune_models: tuple[str, ...] = _param("names", "models to finetune (the costly protocol); empty: models")
    analysis_models: tuple[str, ...] = _param("names", "models for the Q3 analyses")
    dip_steps: int = _param("count", "deep-image-prior steps", "not stated; authors 3000")
    saliency_image_size: int = _param("count", "occlusion saliency input side", "242")
    invariance_images: int = _param("count", "images averaged for invariances", "100")
    options: dict[str, Any] = _param("mapping", 'switches, e.g. {"finetune": {"schedule": "cosine"}}',
                                     default_factory=dict)
    n_boot: int = _param("count", "bootstrap resamples behind the 95% CI of linear and finetune test metrics",
                         "not stated", default=2000)
    executor: str = _param("executor", "where the grid's units run: local (this process) | processes (a pool "
                                       "on this machine) | submitit (SLURM array jobs) | ray; results are the same",
                      default="local")
    executor_options: dict[str, Any] = _param("mapping", "executor settings, e.g. {partition: gpu, gpus_per_task: 1} "
                                                         "(scale/executors.py)", default_factory=dict)
    extra_models: tuple[str, ...] = _param("files", "YAML file(s) declaring your own models (user_entries.py)",
                                           default=())
    extra_datasets: tuple[str, ...] = _param("files", "YAML file(s) declaring your own datasets (user_entries.py)",
                                             default=())

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


PARAMS: dict[str, Param] = {f.name: f.metadata["param"] for f in fields(Config)}
_FIELDS = set(PARAMS)
_DEFAULTS = {f.name: f.default for f in fields(Config) if f.default is not MISSING}   # a profile may leave these out


def parameters_source() -> str:
    """The text of every notebook's ``parameters`` cell (papermill injects overrides after it)."""
    default = {"profile": '"mini"'}
    heads = {name: f"{name}: {KINDS[p.kind][0]} = {default.get(p.kind, 'None')}" for name, p in PARAMS.items()}
    width = max(map(len, heads.values())) + 2
    lines = ["from typing import Optional", "",
             "# A parameter left as None takes the profile's value (medssl_utils/profiles/<profile>.yml)."]
    for name, p in PARAMS.items():
        lines.append(f"{heads[name]:<{width}}# {p.help}" + (f" (paper: {p.paper})" if p.paper else ""))
    return "\n".join(lines)


def _of_kind(*kinds: str) -> list[str]:
    return [name for name, p in PARAMS.items() if p.kind in kinds]


def parameters_table(cfg: "Config | None" = None):
    """The methods page's parameters table: kind, meaning, the paper's value and this profile's."""
    import pandas as pd

    rows = [{"Parameter": name, "Must be": KINDS[p.kind][1], "Meaning": p.help, "Paper": p.paper,
             "This profile": "" if cfg is None else _show(getattr(cfg, name))} for name, p in PARAMS.items()]
    return pd.DataFrame(rows)


def _show(v) -> str:
    """A value as a reader should see it: paths relative to the checkout (no build machine's paths on a page)."""
    if isinstance(v, Path):
        try:
            return v.relative_to(project_root()).as_posix()
        except ValueError:
            return v.name
    if isinstance(v, (tuple, list)):
        return f"{len(v)} names" if len(v) > 3 else ", ".join(map(str, v))
    return "" if v is None or v == {} else str(v)


def profile_path(profile: str) -> Path:
    return PROFILE_DIR / f"{profile}.yml"


def load_profile(profile: str) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    path = profile_path(profile)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"profile file {path} must be a mapping of parameter: value")
    unknown = set(data) - _FIELDS
    if unknown:
        raise ConfigError(f"profile file {path}: unknown key(s) {sorted(unknown)}")
    return data


def resolve(profile: str = "mini", **overrides: Any) -> Config:
    """Merge profile defaults with non-None overrides and validate. Raises ConfigError on the first problem."""
    from .data.registry import DatasetError, get_spec as dataset_spec
    from .models.registry import ModelError, get_spec as model_spec

    values = {**_DEFAULTS, **load_profile(profile)}
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)}; expected some of {sorted(_FIELDS)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    if not values.get("finetune_models"):
        values["finetune_models"] = values.get("models")
    for key in _of_kind("names"):
        v = values.get(key)
        if isinstance(v, str):  # from `papermill -p` (a string): a YAML list or comma-separated names
            v = yaml.safe_load(v) if v.strip().startswith("[") else [s.strip() for s in v.split(",") if s.strip()]
        if not isinstance(v, (list, tuple)) or not v:
            raise ConfigError(f"parameter {key!r} must be {KINDS['names'][1]}, got {v!r}")
        values[key] = tuple(v)
    for key in _of_kind("files"):
        values[key] = _files(key, values.get(key))
    from .user_entries import register_files

    register_files(values["extra_models"], values["extra_datasets"])   # before the names are looked up
    for name in values["models"] + values["finetune_models"] + values["analysis_models"]:
        try:
            model_spec(name)
        except ModelError as exc:
            raise ConfigError(f"parameter 'models': {exc}") from None
    real = []
    for name in values["datasets"]:
        try:
            spec = dataset_spec(name)
        except DatasetError as exc:
            raise ConfigError(f"parameter 'datasets': {exc}") from None
        if not spec.synthetic and not spec.root:   # a user entry reads its own folder, not data_root
            real.append(name)
    for key in _of_kind("folder"):
        v = values.get(key)
        values[key] = _anchor(Path(v).expanduser()) if v not in (None, "") else None
        if values[key] is not None and not values[key].is_dir():
            raise ConfigError(f"parameter {key!r}: folder {values[key]} does not exist")
    if real and values["data_root"] is None:
        raise ConfigError(f"datasets {real} are real data: set data_root to the folder that holds them")
    for key in _of_kind("path"):
        if not values.get(key):
            raise ConfigError(f"parameter {key!r} must be a folder path")
        values[key] = _anchor(Path(values[key]).expanduser())
    device = str(values.get("device", "auto"))
    if device != "auto" and not (device == "cpu" or device == "cuda" or device.startswith("cuda:") or device == "mps"):
        raise ConfigError(f"parameter 'device': {device!r}; expected auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") or device == "mps":
        _check_accelerator(device)
    values["device"] = device
    for key in _of_kind("integer", "count"):
        try:
            values[key] = int(values[key])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"parameter {key!r} must be an integer, got {values.get(key)!r}") from None
        if PARAMS[key].kind == "count" and values[key] <= 0:
            raise ConfigError(f"parameter {key!r} must be {KINDS['count'][1]}, got {values[key]}")
    for key in _of_kind("number"):
        try:
            values[key] = float(values.get(key, 1.0))
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {key!r} must be a number, got {values.get(key)!r}") from None
    for key in _of_kind("mapping"):
        values.setdefault(key, {})
        if not isinstance(values[key], dict):
            raise ConfigError(f"parameter {key!r} must be a mapping")
    from .scale.executors import EXECUTORS, ExecutorOptions

    if values["executor"] not in EXECUTORS:
        raise ConfigError(f"parameter 'executor': {values['executor']!r}; expected one of {', '.join(EXECUTORS)}")
    try:
        ExecutorOptions.from_options(values["executor_options"])     # one line naming a bad key
    except MedsslError as exc:
        raise ConfigError(f"parameter {exc}") from None
    cfg = Config(**values)
    from .preflight import check_options

    check_options(cfg)      # the options mapping and the combinations that cannot work
    return cfg


def _files(key: str, v: Any) -> tuple[str, ...]:
    """``extra_models`` / ``extra_datasets``: a path, a comma-separated or YAML list of paths (``-p``), or a list;
    relative paths are relative to the checkout, each file must exist."""
    if v in (None, "", [], ()):
        return ()
    if isinstance(v, str):
        v = yaml.safe_load(v) if v.strip().startswith("[") else [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
        raise ConfigError(f"parameter {key!r} must be {KINDS['files'][1]}, got {v!r}")
    out = []
    for x in v:
        path = _anchor(Path(x).expanduser())
        if not path.is_file():
            raise ConfigError(f"parameter {key!r}: file {path} does not exist")
        out.append(str(path))
    return tuple(out)


def describe(cfg: Config) -> str:
    """The line every page prints under its parameters; it says so when the inputs are a rehearsal's fakes."""
    line = f"profile {cfg.profile}: {len(cfg.models)} models x {len(cfg.datasets)} datasets, device {cfg.device}"
    if cfg.data_root is not None and (cfg.data_root / REHEARSAL_MARKER).is_file():
        line += ("\nREHEARSAL: random weights, fabricated images. data_root holds the fabricated datasets of "
                 "`medssl rehearse`: no number on this page is a result.")
    return line


def _check_accelerator(device: str) -> None:
    """Refuse a device this machine does not have, before any work (``auto`` falls back to the CPU)."""
    import torch

    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("parameter 'device': 'mps' requested but this machine has no MPS device; "
                              "use auto or cpu")
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"parameter 'device': {device!r} requested but torch sees no CUDA device here; "
                          "use auto (GPU when present) or cpu")
    if ":" in device:
        try:
            index = int(device.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"parameter 'device': {device!r}; expected cuda:N with N an integer") from None
        if not 0 <= index < torch.cuda.device_count():
            raise ConfigError(f"parameter 'device': {device!r} but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")


def project_root(start: Path | None = None) -> Path:
    """The checkout holding ``_config.yml`` above ``start`` (or the cwd): relative paths resolve against it,
    so a notebook run from ``book/generated`` or ``tests/notebooks`` shares the same cache."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").is_file() and (d / "medssl_utils").is_dir():
            return d
    return here


def _anchor(p: Path) -> Path:
    return p if p.is_absolute() else project_root() / p


def from_namespace(ns: dict[str, Any]) -> Config:
    """Resolve from a notebook's parameter variables (those named like Config fields; None = profile default)."""
    params = {k: ns[k] for k in _FIELDS if k in ns and k != "profile"}
    return resolve(ns.get("profile", "mini"), **params)
