"""Your own model or dataset, declared in a YAML file that the ``extra_models`` / ``extra_datasets`` parameters name
(issue 16). ``config.resolve`` reads the files, checks every field and registers each entry as a ``ModelSpec`` /
``DatasetSpec``, after which every stage (features, manifests, episodes, protocols, analyses, pages) treats it
exactly as a built-in entry: nothing downstream knows where an entry came from.

A models file::

    models:
      - name: my-resnet18            # registry name: letters, digits, - _ .
        title: My ResNet-18          # shown in tables (default: name)
        family: self-supervised      # self-supervised | supervised | domain-specific | random (Q1/Q2 groups)
        architecture: resnet18       # a torchvision classification model, a registered one, or timm/<name>
        checkpoint: weights/my.pt    # relative paths: relative to this YAML file
        layout: torchvision          # torchvision (fc/classifier dropped) | plain | timm | a paper layout (moco, ...)
        strip_prefix: module.        # optional: keep the keys under this prefix (module., backbone., encoder_q.)
        preprocessing: imagenet      # imagenet | none | histeq | cxr | {mean: [r, g, b], std: [r, g, b]}
        input_size: 224

A datasets file (the same file may hold both lists)::

    datasets:
      - name: my-xrays
        title: My chest X-rays
        domain: in                   # in: chest X-ray (the domain-specific models' domain) | out
        imagefolder: data/my-xrays   # root/<class>/<image>; or csv: labels.csv (+ path_column, label_column,
                                     # split_column, group_column, image_root)
        fewshot_ways: 2
        metric: accuracy             # accuracy | mean_per_class_accuracy
        manyshot: [linear, finetune]

Every bad field is one line naming the file, the entry and the field. Registering is idempotent per process: the
same declaration again is a no-op; a changed one (or a changed checkpoint or image folder) replaces the old entry
and drops the in-process caches that held it. A name of a built-in entry is refused.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FAMILIES = ("self-supervised", "supervised", "domain-specific", "random")   # = report.FAMILY_ORDER
DOMAINS = ("in", "out")
METRICS = ("accuracy", "mean_per_class_accuracy")
MANYSHOT = ("linear", "finetune")
LAYOUT_ALIASES = {"plain": "canonical"}
MODEL_FIELDS = ("name", "title", "family", "architecture", "checkpoint", "layout", "strip_prefix", "preprocessing",
                "input_size", "method", "pretrain_data", "notes")
DATASET_FIELDS = ("name", "title", "domain", "modality", "imagefolder", "csv", "image_root", "path_column",
                  "label_column", "split_column", "group_column", "classes", "fewshot_ways", "metric", "manyshot")
FILE_KEYS = {"models": MODEL_FIELDS, "datasets": DATASET_FIELDS}

_DECLARED: dict[tuple[str, str], str] = {}   # (kind, name) -> declaration digest of what is registered now


class UserEntryError(ConfigError):
    """A bad field of a user entry: names the YAML file, the entry and the field."""


class _Where:
    def __init__(self, path: Path, kind: str, i: int, name: Any = None):
        self.path, self.kind, self.i, self.name = path, kind, i, name

    def error(self, field: str | None, what: str) -> UserEntryError:
        who = f"{self.kind}[{self.i}]" + (f" ({self.name!r})" if isinstance(self.name, str) else "")
        return UserEntryError(f"{self.path}: {who}" + (f", field {field!r}" if field else "") + f": {what}")


# ---------------------------------------------------------------- files
def read_entries(path: str | Path, key: str) -> list[dict]:
    """The list under ``key`` ("models" / "datasets") of one YAML file; unknown top-level keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise UserEntryError(f"{path}: file does not exist; expected a YAML file with a {key!r} list")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserEntryError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(data, dict) or key not in data:
        raise UserEntryError(f"{path}: expected a mapping with a {key!r} list (see medssl_utils/user_entries.py)")
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise UserEntryError(f"{path}: unknown top-level key(s) {unknown}; expected {', '.join(FILE_KEYS)}")
    entries = data[key]
    if not isinstance(entries, list) or not entries:
        raise UserEntryError(f"{path}: {key!r} must be a non-empty list of entries, got {entries!r}")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise UserEntryError(f"{path}: {key}[{i}] must be a mapping of field: value, got {e!r}")
        where = _Where(path, key, i, e.get("name"))
        extra = sorted(set(e) - set(FILE_KEYS[key]))
        if extra:
            raise where.error(extra[0], f"unknown field; expected some of {', '.join(FILE_KEYS[key])}")
    return entries


def _text(e: dict, field: str, where: _Where, default: str | None = None) -> str:
    v = e.get(field, default)
    if v is None:
        raise where.error(field, "missing; it is required")
    if not isinstance(v, (str, int, float)) or isinstance(v, bool) or not str(v).strip():
        raise where.error(field, f"expected a non-empty text, got {v!r}")
    return str(v).strip()


def _choice(e: dict, field: str, allowed, where: _Where, default: str | None = None) -> str:
    v = _text(e, field, where, default)
    if v not in allowed:
        raise where.error(field, f"{v!r}; expected one of {', '.join(allowed)}")
    return v


def _count(e: dict, field: str, where: _Where, default: int, low: int = 1) -> int:
    v = e.get(field, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise where.error(field, f"expected an integer >= {low}, got {v!r}")
    return v


def _file(e: dict, field: str, where: _Where, *, folder: bool = False) -> Path:
    p = Path(_text(e, field, where)).expanduser()
    p = p if p.is_absolute() else where.path.parent / p
    ok = p.is_dir() if folder else p.is_file()
    if not ok:
        raise where.error(field, f"{'folder' if folder else 'file'} {p} does not exist (relative paths are relative "
                                 f"to {where.path.parent})")
    return p.resolve()


def _name(e: dict, where: _Where) -> str:
    name = _text(e, "name", where)
    if not NAME.match(name):
        raise where.error("name", f"{name!r}; expected letters, digits, '-', '_' or '.' (it names cache files)")
    return name


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


# ---------------------------------------------------------------- models
@functools.lru_cache(maxsize=None)
def _feature_dim(arch: str, size: int) -> int:
    """The headless output width, from a forward pass on the meta device (no memory, no init cost)."""
    import torch

    from .models.architectures import build_headless

    try:
        with torch.device("meta"):
            out = build_headless(arch).eval()(torch.empty(2, 3, size, size))
    except Exception:  # an op without a meta kernel: a real forward at this size
        with torch.no_grad():
            out = build_headless(arch).eval()(torch.zeros(2, 3, size, size))
    return int(out.reshape(2, -1).shape[1])


def _torchvision_headless(name: str):
    """A torchvision classification model with its final classifier replaced by identity."""
    import torchvision
    from torch import nn

    m = torchvision.models.get_model(name, weights=None)
    for attr in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(m, attr, None), nn.Module):
            setattr(m, attr, nn.Identity())
            return m
    raise UserEntryError(f"architecture {name!r}: no fc/classifier/heads module to replace by identity")


def _timm_headless(name: str):
    import timm

    return timm.create_model(name, pretrained=False, num_classes=0)


def _architecture(e: dict, where: _Where) -> str:
    """A registered architecture, a torchvision classification model (registered headless on first use) or
    ``timm/<name>`` when timm is installed."""
    import torchvision

    from .models.architectures import ARCHITECTURES, register_architecture

    arch = _text(e, "architecture", where)
    if arch in ARCHITECTURES:
        return arch
    tv = torchvision.models.list_models(module=torchvision.models)
    if arch.startswith("timm/"):
        try:
            import timm
        except ImportError:
            raise where.error("architecture", f"{arch!r} needs timm, which is not installed (pip install timm)") from None
        if arch[5:] not in timm.list_models():
            raise where.error("architecture", f"{arch[5:]!r} is not a timm model name")
        register_architecture(arch, functools.partial(_timm_headless, arch[5:]))
    elif arch in tv:
        register_architecture(arch, functools.partial(_torchvision_headless, arch))
    else:
        raise where.error("architecture", f"{arch!r} is not a torchvision classification model (e.g. resnet18, "
                                          f"resnet50, densenet121, efficientnet_b0), one of {sorted(ARCHITECTURES)}, "
                                          "or timm/<name>")
    return arch


def _preprocessing(e: dict, where: _Where) -> tuple[str, dict]:
    from .models.preprocessing import PREPROCESSING

    v = e.get("preprocessing", "imagenet")
    if isinstance(v, str):
        if v not in PREPROCESSING:
            raise where.error("preprocessing", f"{v!r}; expected one of {', '.join(PREPROCESSING)} or "
                                               "{mean: [r, g, b], std: [r, g, b]}")
        return v, {}
    if isinstance(v, dict) and set(v) == {"mean", "std"}:
        stats = {}
        for k in ("mean", "std"):
            x = v[k]
            if not (isinstance(x, list) and len(x) == 3 and all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                                                for t in x)):
                raise where.error("preprocessing", f"{k} must be a list of 3 numbers (r, g, b), got {x!r}")
            if k == "std" and min(x) <= 0:
                raise where.error("preprocessing", f"std must be positive, got {x!r}")
            stats[k] = [float(t) for t in x]
        return MEANSTD, stats
    raise where.error("preprocessing", f"{v!r}; expected one of {', '.join(PREPROCESSING)} or "
                                       "{mean: [r, g, b], std: [r, g, b]}")


def model_spec(path: Path, i: int, e: dict):
    """The ``ModelSpec`` of one entry, every field checked (the weights are key-checked when the model loads)."""
    from .models.converters import CONVERTERS
    from .models.registry import ModelSpec

    where = _Where(path, "models", i, e.get("name"))
    name = _name(e, where)
    family = _choice(e, "family", FAMILIES, where)
    arch = _architecture(e, where)
    checkpoint = _file(e, "checkpoint", where)
    layout = _text(e, "layout", where, "torchvision")
    layout = LAYOUT_ALIASES.get(layout, layout)
    if layout not in CONVERTERS:
        raise where.error("layout", f"{layout!r}; expected plain, torchvision, timm or one of {sorted(CONVERTERS)}")
    prefix = e.get("strip_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise where.error("strip_prefix", f"expected a key prefix such as 'module.', got {prefix!r}")
    kind, stats = _preprocessing(e, where)
    size = _count(e, "input_size", where, 224, low=8)
    try:
        dim = _feature_dim(arch, size)
    except Exception as exc:
        raise where.error("input_size", f"{arch} cannot take {size} px input ({type(exc).__name__}: "
                                        f"{' '.join(str(exc).split())[:150]})") from None
    extra = {"original_checkpoint": str(checkpoint), "declared_in": str(path), "strip_prefix": prefix, **stats,
             # its file is at a fixed path, as packaged weights are: no weights_dir is needed for it
             "packaged_weights": str(checkpoint)}
    spec = ModelSpec(name=name, title=_text(e, "title", where, name), family=family, arch=arch, feature_dim=dim,
                     preprocessing=kind, input_size=size, layout=layout, profile="user",
                     method=str(e.get("method", "")), pretrain_data=str(e.get("pretrain_data", "")),
                     notes=str(e.get("notes", f"your model, declared in {path.name}")), extra=extra)
    return spec, _digest(e, str(path), str(checkpoint), _file_stamp(checkpoint))


MEANSTD = "meanstd"


def _meanstd_preprocess(spec, *, resize: int | None = None, fewshot_small_resize: int | None = None, **_):
    from .models.preprocessing import make_preprocess

    base = make_preprocess("none", spec.input_size, resize=resize, fewshot_small_resize=fewshot_small_resize)
    return MeanStdPreprocess(kind=MEANSTD, size=base.size, resize=base.resize, square=base.square,
                             mean=tuple(spec.extra["mean"]), std=tuple(spec.extra["std"]))


def _define_meanstd():
    from dataclasses import dataclass

    import torch

    from .models.preprocessing import Preprocess
    from .models.registry import PREPROCESS_KINDS

    @dataclass(frozen=True)
    class MeanStdPreprocess(Preprocess):
        """A user entry's own normalisation statistics; its key names them, so they enter every cache key."""
        mean: tuple[float, ...] = (0.0, 0.0, 0.0)
        std: tuple[float, ...] = (1.0, 1.0, 1.0)

        @property
        def key(self) -> str:
            stats = f"mean{','.join(f'{m:g}' for m in self.mean)}-std{','.join(f'{s:g}' for s in self.std)}"
            if self.square:
                return f"{stats}-square{self.square}-crop{self.size}-bilinear"
            return f"{stats}-resize{self.resize or self.size}-crop{self.size}-bicubic"

        def normalise(self, x: torch.Tensor) -> torch.Tensor:
            shape = (1, 3, 1, 1) if x.ndim == 4 else (3, 1, 1)
            return (x - torch.tensor(self.mean).view(shape)) / torch.tensor(self.std).view(shape)

    PREPROCESS_KINDS[MEANSTD] = _meanstd_preprocess
    return MeanStdPreprocess


MeanStdPreprocess = _define_meanstd()


# ---------------------------------------------------------------- datasets
def _natural(labels) -> list[str]:
    labels = sorted(set(labels))
    return sorted(labels, key=int) if all(re.fullmatch(r"-?\d+", s) for s in labels) else labels


def dataset_spec(path: Path, i: int, e: dict):
    """The ``DatasetSpec`` of one entry; the folder or CSV is indexed now, so a missing column, a class too small
    for a few-shot episode or a bad split column is found before any work."""
    from .data.base import DatasetError
    from .data.folders import IndexSource, load_indexed
    from .data.registry import DatasetSpec
    from .protocols.fewshot import N_QUERY, N_SHOT

    where = _Where(path, "datasets", i, e.get("name"))
    name = _name(e, where)
    domain = _choice(e, "domain", DOMAINS, where)
    has = [k for k in ("imagefolder", "csv") if k in e]
    if len(has) != 1:
        raise where.error(None, f"give exactly one of the fields 'imagefolder' (root/<class>/<image>) or 'csv' "
                                f"(rows path,label), got {has or 'neither'}")
    field = has[0]
    columns: dict[str, Any] = {}
    if field == "imagefolder":
        root = _file(e, "imagefolder", where, folder=True)
        for k in ("image_root", "path_column", "label_column", "split_column", "group_column"):
            if k in e:
                raise where.error(k, "applies to a 'csv' dataset only")
        source = IndexSource("imagefolder", root)
    else:
        root = _file(e, "csv", where)
        columns = {"path_column": _text(e, "path_column", where, "path"),
                   "label_column": _text(e, "label_column", where, "label"),
                   "split_column": _text(e, "split_column", where) if "split_column" in e else None,
                   "group_column": _text(e, "group_column", where) if "group_column" in e else None,
                   "image_root": _file(e, "image_root", where, folder=True) if "image_root" in e else None}
        source = IndexSource("csv", root, **columns)
    try:
        index = source()
    except DatasetError as exc:
        raise where.error(field, str(exc)) from None
    found = _natural(index.labels)
    classes = e.get("classes")
    if classes is None:
        classes = found
    elif not (isinstance(classes, list) and all(isinstance(c, (str, int)) for c in classes)):
        raise where.error("classes", f"expected a list of class names, got {classes!r}")
    else:
        classes = [str(c) for c in classes]
        if sorted(classes) != sorted(found):
            raise where.error("classes", f"{classes} does not match the classes found in {root.name}: {found}")
    if len(classes) < 2:
        raise where.error(field, f"{root} has {len(classes)} class ({', '.join(classes)}); expected at least 2")
    ways = _count(e, "fewshot_ways", where, 2, low=2)
    if ways > len(classes):
        raise where.error("fewshot_ways", f"{ways}-way episodes need {ways} classes; {root.name} has {len(classes)}")
    need = N_SHOT + N_QUERY
    counts = {c: index.labels.count(c) for c in classes}
    small = {c: n for c, n in counts.items() if n < need}
    if small:
        c, n = next(iter(small.items()))
        raise where.error(field, f"class {c!r} has {n} image(s); a few-shot episode needs at least {need} per class "
                                 f"({N_SHOT}-shot + {N_QUERY} queries)" + (f"; {len(small) - 1} more class(es) too small"
                                                                          if len(small) > 1 else ""))
    manyshot = e.get("manyshot", list(MANYSHOT))
    if not isinstance(manyshot, list) or any(p not in MANYSHOT for p in manyshot):
        raise where.error("manyshot", f"{manyshot!r}; expected a list of some of {', '.join(MANYSHOT)} (or [])")
    what = "folder names" if field == "imagefolder" else f"column {columns['label_column']!r}"
    spec = DatasetSpec(
        name=name, title=_text(e, "title", where, name),
        modality=_text(e, "modality", where, "chest X-ray" if domain == "in" else "your data"), domain=domain,
        classes=tuple(classes), label_policy=f"as declared in {path.name}: classes from the {what}",
        fewshot_ways=ways, manyshot=tuple(manyshot), metric=_choice(e, "metric", METRICS, where, "accuracy"),
        loader=functools.partial(load_indexed, index=source), options={"on_bad_image": "raise"},
        split="official" if index.splits else "random_80_20", root=str(root))
    return spec, _digest(e, str(path), str(root), index.digest())


# ---------------------------------------------------------------- registration
def _clear_caches() -> None:
    """Drop the in-process caches that may hold a replaced entry (loaded datasets and backbones)."""
    inputs = sys.modules.get("medssl_utils.pipeline.inputs")
    if inputs is not None:
        inputs.clear_caches()


def _register(kind: str, files, build) -> list[str]:
    if kind == "models":
        from .models.registry import MODELS as store, _load_entries, register
    else:
        from .data.registry import DATASETS as store, _load_entries, register
    _load_entries()   # the built-ins first: a clash with one of them is refused
    names: dict[str, Path] = {}
    for f in files:
        path = Path(f)
        for i, e in enumerate(read_entries(path, kind)):
            spec, digest = build(path, i, e)
            where = _Where(path, kind, i, spec.name)
            if spec.name in names:
                raise where.error("name", f"{spec.name!r} is declared twice (also in {names[spec.name]})")
            names[spec.name] = path
            if (kind, spec.name) not in _DECLARED and spec.name in store:
                raise where.error("name", f"{spec.name!r} is the name of a built-in {kind[:-1]}; choose another")
            if _DECLARED.get((kind, spec.name)) == digest:
                continue
            replacing = (kind, spec.name) in _DECLARED
            register(spec, replace=replacing)
            _DECLARED[(kind, spec.name)] = digest
            if replacing:
                _clear_caches()
    return list(names)


def register_files(model_files=(), dataset_files=()) -> tuple[list[str], list[str]]:
    """Register the entries of the ``extra_models`` and ``extra_datasets`` files; (model names, dataset names)."""
    return _register("models", model_files, model_spec), _register("datasets", dataset_files, dataset_spec)


def is_user_entry(kind: str, name: str) -> bool:
    """Whether a registry name came from a user's YAML file (``kind``: "models" or "datasets")."""
    return (kind, name) in _DECLARED


def declared_digest() -> str:
    """One hash of every user entry registered in this process and of what it read (YAML entry, checkpoint size and
    mtime, image index): for a stamp that must change when a user's file does (``notebooks.stamp``)."""
    return _digest(sorted(_DECLARED.items()))


# ---------------------------------------------------------------- the book's worked example
EXAMPLE_MODELS = ("mini-sup-s0", "mini-simclr-s0")          # the built-ins the example compares with
EXAMPLE_DATASETS = ("medsynth-montgomery", "medsynth-bach")


def write_example(cfg) -> tuple[Path, Path]:
    """The worked example of the "own model or dataset" page, under ``cache_dir/own-example``: a mini-zoo
    checkpoint saved as "yours" with keys under a Lightning-style ``backbone.`` prefix, an ImageFolder of MedSynth
    Montgomery images, and the two YAML files declaring them. Returns (models YAML, datasets YAML)."""
    import torch

    from .pipeline import inputs
    from .models.checkpoints import safe_load
    from .models.minizoo import WEIGHTS_DIR
    from .storage import atomic_path, atomic_write_text

    example = Path(cfg.cache_dir) / "own-example"
    ckpt = example / "my_simclr.pt"
    if not ckpt.is_file():
        state = safe_load(WEIGHTS_DIR / "mini-simclr-s0.pt")
        with atomic_path(ckpt) as tmp:
            torch.save({f"backbone.{k}": v for k, v in state.items()}, tmp)
    source = inputs.dataset(cfg, "medsynth-montgomery")            # one folder per class
    for i in range(len(source)):
        target = example / "my_xrays" / source.classes[source.labels[i]].split(" (")[0] / f"{i:04d}.png"
        if not target.is_file():
            with atomic_path(target) as tmp:
                source.image(i).save(tmp, format="PNG")
    models = {"models": [{
        "name": "my-simclr", "title": "My SimCLR (a renamed mini-zoo checkpoint)", "family": "self-supervised",
        "architecture": "mini_resnet18_w16", "checkpoint": ckpt.name, "layout": "plain", "strip_prefix": "backbone.",
        "preprocessing": "imagenet", "input_size": 32}]}
    data = {"datasets": [{
        "name": "my-xrays", "title": "My X-rays (MedSynth Montgomery images)", "domain": "in",
        "imagefolder": "my_xrays", "fewshot_ways": 2, "metric": "accuracy",
        "manyshot": []}]}   # [linear, finetune] adds the many-shot protocols
    paths = example / "my_models.yml", example / "my_data.yml"
    for path, text in zip(paths, (models, data)):
        atomic_write_text(path, yaml.safe_dump(text, sort_keys=False))
    return paths


def with_example(cfg):
    """``cfg`` with the worked example's entries beside the example's built-ins (the page's own parameters kept)."""
    from .config import resolve

    models_yml, data_yml = write_example(cfg)
    same = {k: v for k, v in cfg.as_dict().items() if k != "profile"}
    return resolve(cfg.profile, **{**same, "extra_models": [str(models_yml)], "extra_datasets": [str(data_yml)],
                                   "models": [*EXAMPLE_MODELS, "my-simclr"],
                                   "datasets": [*EXAMPLE_DATASETS, "my-xrays"]})
