"""Run configuration: a profile YAML plus notebook/CLI overrides, validated once, before any work.

A profile (``profiles/<name>.yml``) is a flat mapping of the notebooks' parameters, so the same file
works with ``papermill -f``. ``resolve`` fills every parameter left as ``None`` from the profile,
checks everything, and returns a frozen ``Config`` whose plain values travel to every stage.
"""
from __future__ import annotations

from .errors import MedsslError

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILES = ("mini", "smoke", "paper")
REHEARSAL_MARKER = "MEDSSL_REHEARSAL.json"   # written by `medssl rehearse` into its fabricated data_root


class ConfigError(MedsslError):
    """One clear line saying which parameter is wrong and what was expected."""


@dataclass(frozen=True)
class Config:
    profile: str
    data_root: Path | None
    weights_dir: Path | None
    cache_dir: Path
    results_dir: Path
    device: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    seed: int
    image_size: int
    n_episodes: int
    dataset_scale: float
    finetune_max_steps: int
    finetune_eval_every: int
    finetune_models: tuple[str, ...]   # finetuning is the costly protocol: a subset of ``models``
    analysis_models: tuple[str, ...]
    dip_steps: int
    saliency_image_size: int
    invariance_images: int
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


_FIELDS = {f for f in Config.__dataclass_fields__}


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

    values = load_profile(profile)
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)}; expected some of {sorted(_FIELDS)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    if not values.get("finetune_models"):
        values["finetune_models"] = values.get("models")
    for key in ("models", "datasets", "finetune_models", "analysis_models"):
        v = values.get(key)
        if isinstance(v, str):  # from `papermill -p` (a string): a YAML list or comma-separated names
            v = yaml.safe_load(v) if v.strip().startswith("[") else [s.strip() for s in v.split(",") if s.strip()]
        if not isinstance(v, (list, tuple)) or not v:
            raise ConfigError(f"parameter {key!r} must be a non-empty list of registry names, got {v!r}")
        values[key] = tuple(v)
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
        if not spec.synthetic:
            real.append(name)
    for key in ("data_root", "weights_dir"):
        v = values.get(key)
        values[key] = _anchor(Path(v).expanduser()) if v not in (None, "") else None
        if values[key] is not None and not values[key].is_dir():
            raise ConfigError(f"parameter {key!r}: folder {values[key]} does not exist")
    if real and values["data_root"] is None:
        raise ConfigError(f"datasets {real} are real data: set data_root to the folder that holds them")
    for key in ("cache_dir", "results_dir"):
        if not values.get(key):
            raise ConfigError(f"parameter {key!r} must be a folder path")
        values[key] = _anchor(Path(values[key]).expanduser())
    device = str(values.get("device", "auto"))
    if device != "auto" and not (device == "cpu" or device == "cuda" or device.startswith("cuda:") or device == "mps"):
        raise ConfigError(f"parameter 'device': {device!r}; expected auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") or device == "mps":
        _check_accelerator(device)
    values["device"] = device
    for key in ("seed", "image_size", "n_episodes", "finetune_max_steps", "finetune_eval_every", "dip_steps",
                "saliency_image_size", "invariance_images"):
        try:
            values[key] = int(values[key])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"parameter {key!r} must be an integer, got {values.get(key)!r}") from None
        if key != "seed" and values[key] <= 0:
            raise ConfigError(f"parameter {key!r} must be positive, got {values[key]}")
    values["dataset_scale"] = float(values.get("dataset_scale", 1.0))
    values.setdefault("options", {})
    if not isinstance(values["options"], dict):
        raise ConfigError("parameter 'options' must be a mapping")
    cfg = Config(**values)
    from .preflight import check_options

    check_options(cfg)      # the options mapping and the combinations that cannot work
    return cfg


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
