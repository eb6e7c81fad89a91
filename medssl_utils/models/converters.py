"""Original checkpoint layouts -> the canonical headless torchvision state dict.

One function per original layout (``CONVERTERS[layout]``): it takes the raw loaded object and returns
a state dict whose keys are those of ``architectures.build_headless(arch)``. Each keeps only the keys
under its layout's prefix (tested at the START of the key), drops the heads it knows by name, and
leaves every other key in place so that the strict check lists it: nothing is dropped silently.

``convert(name, source, weights_dir)`` runs the whole path for a registered model: read the original
safely, verify its sha256 when the spec has one, convert, strict-check against the architecture, and
write ``weights_dir/<name>.pt`` plus its entry in ``weights_dir/manifest.json``. All checks run before
anything is written, so a failure leaves ``weights_dir`` unchanged.

Layouts (provenance: the authors' ``download_and_prepare_models.py`` and the history file
``download_and_prepare_domainspecific_models.py``, summarised in AUTHORS_CODE.md §2):

* ``torchvision``: plain state dict; ``fc``/``classifier`` dropped; DenseNet files of the 2017 format
  (``...denselayer1.norm.1.weight``) renamed to the current names (``norm1.weight``).
* ``simclr_v1``: tonylins/simclr-converter output ``{'state_dict': torchvision keys incl. fc}``.
* ``moco`` / ``moco_cxr``: ``ckpt['state_dict']``, backbone under ``module.encoder_q.``; the key encoder
  ``module.encoder_k.*``, ``module.queue`` and ``module.queue_ptr`` are ignored; the MLP/linear head
  (``fc.*`` for ResNets, ``classifier.*`` for DenseNets) dropped.
* ``swav``: plain state dict under ``module.``; ``projection_head`` and ``prototypes`` dropped.
* ``pirl`` (PyContrast): ``ckpt['model']`` (or ``['state_dict']``), backbone under ``module.encoder.``;
  the contrastive heads ``module.head*``/``module.jigsaw*`` dropped.
* ``mimic_chexpert`` (CovidPrognosis, PyTorch Lightning): ``ckpt['state_dict']``, backbone under
  ``model.encoder_q.``; DenseNet-121 built with ``num_classes=128``, whose 128-d ``classifier`` is dropped
  (``fc`` likewise, should a ResNet variant be used).
* ``byol``: the DeepMind Haiku pickle, see ``byol``.
* ``canonical``: already canonical (our own mini-zoo, packaged weights).
* ``timm``: a timm state dict; its final classifier dropped (user entries, ``user_entries.py``).
* ``strip_prefix(obj, prefix)``: not a layout of its own: a user entry's ``strip_prefix`` field (``module.``,
  ``backbone.``, ``encoder_q.``) applied before its layout, see ``load_original``.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..storage import atomic_path, atomic_write_text, sha256_file
from .checkpoints import PickledRecord, UnsafeCheckpointError, first_non_finite, load_array_pickle, safe_load
from .registry import ModelError, ModelSpec, get_spec

MANIFEST = "manifest.json"
CONVERTER_VERSION = 1


class LayoutError(ModelError):
    """The loaded object does not have the structure of the expected original layout."""


State = dict[str, torch.Tensor]


# --- helpers ----------------------------------------------------------------------------------------

def _describe_keys(keys, n: int = 6) -> str:
    keys = list(keys)
    head = ", ".join(repr(k) for k in keys[:n])
    return f"[{head}{', ...' if len(keys) > n else ''}] ({len(keys)} keys)"


def _state_dict_at(obj: Any, names: tuple[str, ...], layout: str) -> Mapping:
    """The state dict stored under the first of ``names`` in a checkpoint dict."""
    if isinstance(obj, Mapping):
        for name in names:
            if isinstance(obj.get(name), Mapping):
                return obj[name]
        found = _describe_keys(obj.keys())
    else:
        found = f"a {type(obj).__name__}"
    raise LayoutError(f"expected a checkpoint dict with a state dict under {' or '.join(map(repr, names))} "
                      f"(layout {layout!r}); found {found}{_hint(obj, layout)}")


def _plain_state(obj: Any, layout: str) -> Mapping:
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    found = _describe_keys(obj.keys()) if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
    raise LayoutError(f"expected a plain state dict (name -> tensor) (layout {layout!r}); found {found}"
                      f"{_hint(obj, layout)}")


def _take(state: Mapping, layout: str, prefix: str, *, source: Any, ignore: tuple[str, ...] = (),
          ignore_exact: tuple[str, ...] = (), heads: tuple[str, ...] = ()) -> State:
    """Keys under ``prefix`` with it stripped; ``ignore``d keys and ``heads`` dropped; others kept as-is.

    ``source`` is the whole loaded object: the layout hint must see its nesting (a plain torchvision state
    dict and simclr_v1's ``{'state_dict': ...}`` have the same keys).
    """
    if prefix and not any(k.startswith(prefix) for k in state):
        raise LayoutError(f"no key starts with {prefix!r} (layout {layout!r}); keys are {_describe_keys(state)}"
                          f"{_hint(source, layout)}")
    out: State = {}
    for key, value in state.items():
        if key in ignore_exact or key.startswith(ignore):
            continue
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if rest.split(".", 1)[0] in heads:
                continue
            out[rest] = value
        else:
            out[key] = value  # not ours: left for the strict check to report
    return out


def sniff_layout(obj: Any) -> str | None:
    """Best guess of an object's original layout, for error messages only."""
    if not isinstance(obj, Mapping):
        return None
    if "experiment_state" in obj:
        return "byol"
    for holder, layouts in (("state_dict", (("module.encoder_q.", "moco"), ("model.encoder_q.", "mimic_chexpert"),
                                            ("conv1.", "simclr_v1"), ("module.encoder.", "pirl"))),
                            ("model", (("module.encoder.", "pirl"),))):
        inner = obj.get(holder)
        if isinstance(inner, Mapping):
            for prefix, layout in layouts:
                if any(str(k).startswith(prefix) for k in inner):
                    return layout
    keys = [str(k) for k in obj]
    if any(k.startswith(("module.prototypes", "module.projection_head")) for k in keys):
        return "swav"
    if any(k.startswith("module.encoder_q.") for k in keys):
        return "moco (state dict without its checkpoint wrapper)"
    if any(k.startswith(("conv1.", "features.")) for k in keys):
        return "torchvision"
    return None


def _hint(obj: Any, expected: str) -> str:
    guess = sniff_layout(obj)
    if guess and not guess.startswith(expected) and not (expected == "moco_cxr" and guess == "moco"):
        return f"; it looks like the {guess!r} layout{_layout_models(guess.split(' ', 1)[0])}: is this the " \
               "checkpoint of another model?"
    return ""


def _layout_models(layout: str) -> str:
    """' (used by a, b)': the paper models whose original checkpoints have ``layout``."""
    from .registry import MODELS, _load_entries

    _load_entries()
    names = sorted(n for n, s in MODELS.items() if s.layout == layout and s.profile == "paper")
    return f" (the original files of {', '.join(names)})" if names else ""


# --- one converter per original layout --------------------------------------------------------------

_DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def torchvision_layout(obj: Any) -> State:
    """torchvision's own files: drop the ImageNet head; rename 2017-format DenseNet keys."""
    state = _plain_state(obj, "torchvision")
    out: State = {}
    for key, value in state.items():
        match = _DENSENET_LEGACY.match(key)
        if match:
            key = match.group(1) + match.group(2)
        if key.split(".", 1)[0] in ("fc", "classifier"):
            continue
        out[key] = value
    return out


def simclr_v1(obj: Any) -> State:
    """tonylins/simclr-converter output: torchvision keys under 'state_dict', supervised head ``fc`` dropped."""
    return _take(_state_dict_at(obj, ("state_dict",), "simclr_v1"), "simclr_v1", "", source=obj, heads=("fc",))


def moco(obj: Any, layout: str = "moco") -> State:
    """MoCo (v1/v2) ``main_moco.py`` checkpoints: the query encoder, without its MLP/linear head."""
    state = _state_dict_at(obj, ("state_dict",), layout)
    return _take(state, layout, "module.encoder_q.", source=obj, ignore=("module.encoder_k.",),
                 ignore_exact=("module.queue", "module.queue_ptr"), heads=("fc", "classifier"))


def moco_cxr(obj: Any) -> State:
    """MoCo-CXR (stanfordmlgroup): MoCo's layout for ResNet-18 (head ``fc``) or DenseNet-121 (``classifier``)."""
    return moco(obj, "moco_cxr")


def swav(obj: Any) -> State:
    """SwAV release files: a plain DataParallel state dict; projection head and prototypes dropped."""
    return _take(_plain_state(obj, "swav"), "swav", "module.", source=obj, heads=("projection_head", "prototypes"))


def pirl(obj: Any) -> State:
    """PyContrast PIRL: the encoder of ``RGBSingleHead`` under ``module.encoder.``; heads dropped."""
    state = _state_dict_at(obj, ("model", "state_dict"), "pirl")
    return _take(state, "pirl", "module.encoder.", source=obj, ignore=("module.head", "module.jigsaw"),
                 heads=("fc", "linear", "head", "projection", "prototypes"))


def mimic_chexpert(obj: Any) -> State:
    """CovidPrognosis MoCo (Lightning): ``model.encoder_q.`` of a DenseNet-121 with a 128-d classifier."""
    state = _state_dict_at(obj, ("state_dict",), "mimic_chexpert")
    return _take(state, "mimic_chexpert", "model.encoder_q.", source=obj, ignore=("model.encoder_k.",),
                 ignore_exact=("model.queue", "model.queue_ptr"), heads=("classifier", "fc"))


def canonical(obj: Any) -> State:
    return dict(_plain_state(obj, "canonical"))


def _any_state(obj: Any, layout: str) -> Mapping:
    """A plain state dict, or one stored under 'state_dict' / 'model' (Lightning, timm and most training scripts)."""
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return _state_dict_at(obj, ("state_dict", "model"), layout)


# The final classifier of timm models (``num_classes=0`` makes it an identity, so its weights have no place).
TIMM_HEADS = ("head", "head.fc", "fc", "classifier", "head_dist", "last_linear")


def timm_layout(obj: Any) -> State:
    """A timm state dict (plain or under 'state_dict'/'model'): the final classifier's weight and bias dropped."""
    drop = {f"{h}.{w}" for h in TIMM_HEADS for w in ("weight", "bias")}
    return {k: v for k, v in _any_state(obj, "timm").items() if k not in drop}


def strip_prefix(obj: Any, prefix: str) -> State:
    """The keys under ``prefix`` (``module.``, ``backbone.``, ``encoder_q.``...) with it stripped, from a plain state
    dict or one under 'state_dict'/'model'. The rest of the file (heads, key encoder, queues) is not the backbone the
    user pointed at and is left out; the strict check still lists any backbone key that is missing."""
    state = _any_state(obj, f"strip_prefix {prefix!r}")
    out = {k[len(prefix):]: v for k, v in state.items() if str(k).startswith(prefix)}
    if not out:
        raise LayoutError(f"no key starts with {prefix!r} (strip_prefix); keys are {_describe_keys(state)}")
    return out


# BYOL ----------------------------------------------------------------------------------------------

# Field order of byol.byol_experiment._ByolExperimentState (deepmind-research/byol, 2020).
BYOL_STATE_FIELDS = ("online_params", "target_params", "online_state", "target_state", "opt_state")
BYOL_HEAD_ROOTS = ("projector", "predictor", "classifier")
_BYOL_BLOCK = re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/(conv|batchnorm)_(\d+)$")
_BYOL_SHORTCUT = re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/shortcut_(conv|batchnorm)$")


def _byol_field(state: Any, name: str) -> Any:
    if isinstance(state, Mapping) and name in state:
        return state[name]
    if isinstance(state, PickledRecord) and state.qualname.endswith("_ByolExperimentState") \
            and len(state.args) == len(BYOL_STATE_FIELDS):
        return state.args[BYOL_STATE_FIELDS.index(name)]
    if isinstance(state, PickledRecord) and isinstance(state.state, Mapping) and name in state.state:
        return state.state[name]
    raise LayoutError(f"BYOL checkpoint: experiment_state has no {name!r} (found {state!r}); expected the "
                      "DeepMind pretrain_res50x1.pkl structure or plain dicts")


def _as_mapping(x: Any, what: str) -> Mapping:
    if isinstance(x, Mapping):
        return x
    if isinstance(x, PickledRecord):
        maps = [a for a in x.args if isinstance(a, Mapping)]
        if len(maps) == 1:
            return maps[0]
        if isinstance(x.state, Mapping) and x.state:
            return x.state
    raise LayoutError(f"BYOL checkpoint: cannot read {what} ({x!r}) as a mapping. Re-export the file with plain "
                      "dicts of numpy arrays (see converters.byol)")


def _haiku_to_torch(path: str) -> str | None:
    if path == "initial_conv":
        return "conv1"
    if path == "initial_batchnorm":
        return "bn1"
    m = _BYOL_BLOCK.match(path)
    if m:
        g, b, kind, i = int(m[1]), int(m[2]), m[3], int(m[4])
        return f"layer{g + 1}.{b}.{'conv' if kind == 'conv' else 'bn'}{i + 1}"
    m = _BYOL_SHORTCUT.match(path)
    if m:
        return f"layer{int(m[1]) + 1}.{int(m[2])}.downsample.{0 if m[3] == 'conv' else 1}"
    return None


def _array(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise LayoutError(f"BYOL checkpoint: {what} is not a numeric array (dtype {arr.dtype})")
    return arr


def byol(obj: Any) -> State:
    """DeepMind BYOL Haiku checkpoint (``pretrain_res50x1.pkl``): online ResNet params and BN state.

    Structure: ``{'experiment_state': _ByolExperimentState(online_params, ..., online_state, ...), 'step',
    'rng'}``; params ``{'res_net50/~/block_group_0/~/block_0/~/conv_0': {'w': HWIO}, '.../batchnorm_0':
    {'scale', 'offset'}}``, state ``{'.../batchnorm_0/~/mean_ema': {'average', 'hidden', 'counter'}}``.
    Conv kernels go HWIO -> OIHW; BN scale/offset -> weight/bias; running mean/var are the EMA
    ``average`` (the debiased value Haiku's BatchNorm uses at test time). Projector, predictor and the
    online classifier are dropped. Modules are matched by name, not by dict order.

    Caveat (deepmind-research #84): Haiku convs and the stem max-pool use TensorFlow 'SAME' padding, which is
    asymmetric for stride 2 (e.g. 0 before / 1 after on a 56-px map), while torchvision pads symmetrically.
    The converted weights in a torchvision ResNet-50 therefore compute slightly different features: reported
    ImageNet top-1 about 70 % instead of 74.6 % with a padding fix. The authors (via ERT's ``convert_byol``)
    used the plain torchvision model, so this is what the paper's BYOL numbers measure; we do the same.

    Safe loading: the original file is a ``dill`` pickle whose containers are classes of the byol/haiku/jax
    code. ``checkpoints.load_array_pickle`` reads it without importing them (inert records). If a file uses
    other classes, re-export it once as plain dicts in an environment that has them, e.g.
    ``{'experiment_state': {'online_params': {k: {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in
    es.online_params.items()}, 'online_state': ...}}`` saved with ``pickle.dump``.
    """
    if not isinstance(obj, Mapping) or "experiment_state" not in obj:
        found = _describe_keys(obj.keys()) if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise LayoutError(f"expected the BYOL pickle structure {{'experiment_state': ...}} (layout 'byol'); "
                          f"found {found}{_hint(obj, 'byol')}")
    es = obj["experiment_state"]
    params = _as_mapping(_byol_field(es, "online_params"), "online_params")
    bn_state = _as_mapping(_byol_field(es, "online_state"), "online_state")
    out: State = {}
    unknown: list[str] = []
    for key, leaf in params.items():
        root, _, rest = str(key).partition("/~/")
        if not root.startswith("res_net"):
            if not any(h in root for h in BYOL_HEAD_ROOTS):
                unknown.append(key)
            continue
        target = _haiku_to_torch(rest)
        leaf = _as_mapping(leaf, key)
        if target is None:
            unknown.append(key)
            continue
        if "w" in leaf:
            w = _array(leaf["w"], f"{key}/w")
            if w.ndim != 4:
                raise LayoutError(f"BYOL checkpoint: {key}/w has shape {w.shape}; expected a 4-d HWIO kernel")
            out[f"{target}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
            if "b" in leaf:
                out[f"{target}.bias"] = torch.from_numpy(_array(leaf["b"], f"{key}/b").copy())
        elif "scale" in leaf and "offset" in leaf:
            out[f"{target}.weight"] = torch.from_numpy(_array(leaf["scale"], f"{key}/scale").reshape(-1).copy())
            out[f"{target}.bias"] = torch.from_numpy(_array(leaf["offset"], f"{key}/offset").reshape(-1).copy())
            for ema, name in (("mean_ema", "running_mean"), ("var_ema", "running_var")):
                skey = f"{key}/~/{ema}"
                if skey not in bn_state:
                    raise LayoutError(f"BYOL checkpoint: online_state has no {skey!r} for batch norm {key!r}")
                entry = _as_mapping(bn_state[skey], skey)
                if "average" not in entry:
                    raise LayoutError(f"BYOL checkpoint: {skey} has no 'average' (found {sorted(entry)})")
                out[f"{target}.{name}"] = torch.from_numpy(_array(entry["average"], skey).reshape(-1).copy())
        else:
            raise LayoutError(f"BYOL checkpoint: {key} has entries {sorted(leaf)}; expected 'w' (conv) or "
                              "'scale'/'offset' (batch norm)")
    if unknown:
        raise LayoutError(f"BYOL checkpoint: unrecognised Haiku modules {_describe_keys(unknown)}; expected "
                          "res_net*/~/initial_conv, .../block_group_G/~/block_B/~/conv_I|batchnorm_I|shortcut_*, "
                          f"and heads {BYOL_HEAD_ROOTS}")
    if not out:
        raise LayoutError("BYOL checkpoint: no res_net* modules in online_params")
    return out


CONVERTERS: dict[str, Callable[[Any], State]] = {
    "torchvision": torchvision_layout,
    "simclr_v1": simclr_v1,
    "moco": moco,
    "moco_cxr": moco_cxr,
    "swav": swav,
    "pirl": pirl,
    "mimic_chexpert": mimic_chexpert,
    "byol": byol,
    "canonical": canonical,
    "timm": timm_layout,
}


# Harmless metadata classes some original files pickle next to their tensors: the only allow-lists.
# Lightning's AttributeDict (hyper-parameters of the CovidPrognosis checkpoints) is read as a plain dict.
SAFE_GLOBALS: dict[str, tuple] = {
    "mimic_chexpert": (__import__("argparse").Namespace,
                       (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
                       (dict, "lightning_fabric.utilities.data.AttributeDict")),
    "pirl": (__import__("argparse").Namespace,),
}

# How each layout's file is read: a torch file (weights_only) unless listed here.
READERS: dict[str, Callable[[Path], Any]] = {"byol": load_array_pickle}


def read_original(layout: str, path: str | Path) -> Any:
    """Load an original checkpoint safely, the way its layout needs."""
    if layout in READERS:
        return READERS[layout](Path(path))
    try:
        return safe_load(path, allow=SAFE_GLOBALS.get(layout, ()))
    except UnsafeCheckpointError as exc:
        others = sorted(other for other, allowed in SAFE_GLOBALS.items() if other != layout
                        and set(exc.globals) <= {_global_name(a) for a in allowed})
        if others and exc.globals:
            raise UnsafeCheckpointError(f"{exc} These globals are allowed for the {', '.join(map(repr, others))} "
                                        f"layout, not {layout!r}: is this the checkpoint of another model?") from None
        raise


def _global_name(item: Any) -> str:
    return item[1] if isinstance(item, tuple) else f"{item.__module__}.{item.__qualname__}"


# --- strict check against the architecture ----------------------------------------------------------

@lru_cache(maxsize=None)
def _template(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the headless architecture, built on the meta device (no memory, no init cost)."""
    from .architectures import build_headless

    with torch.device("meta"):
        module = build_headless(arch)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_state(state: Mapping[str, torch.Tensor], arch: str, where: str) -> None:
    """Raise one error listing every missing key, unexpected key and shape mismatch."""
    template = _template(arch)
    missing = [k for k in template if k not in state]
    unexpected = [k for k in state if k not in template]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {template[k]}" for k in template
              if k in state and tuple(state[k].shape) != template[k]]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_describe_keys(missing, 8)}")
        if unexpected:
            parts.append(f"unexpected keys {_describe_keys(unexpected, 8)}")
        if shapes:
            parts.append(f"shape mismatches (file vs {arch}) [{'; '.join(shapes[:5])}{'; ...' if len(shapes) > 5 else ''}]"
                         f" ({len(shapes)})")
        raise ModelError(f"{where}: the converted weights do not fit {arch}: " + "; ".join(parts)
                         + ". Is this a checkpoint of another architecture or model?")


def finalise(state: State, arch: str, where: str) -> State:
    """Tensors as float32, contiguous, owning their storage; absent BN counters (old files) filled with 0;
    then the strict check."""
    out: State = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
        value = value.detach().to("cpu")
        value = (value.float() if value.is_floating_point() else value).contiguous()
        if value.untyped_storage().nbytes() != value.numel() * value.element_size():
            value = value.clone()  # a view into a larger storage: save only its own elements
        out[key] = value
    template = _template(arch)
    for key in template:
        if key.endswith(".num_batches_tracked") and key not in out \
                and key.replace("num_batches_tracked", "running_mean") in out:
            out[key] = torch.tensor(0, dtype=torch.long)
    check_state(out, arch, where)
    bad = first_non_finite(out)
    if bad:
        raise ModelError(f"{where}: the weights hold non-finite (NaN/inf) values, first in {bad}; the checkpoint "
                         "is damaged or from a diverged training run. Nothing was written.")
    return out


def convert_object(layout: str, obj: Any, arch: str, where: str = "checkpoint") -> State:
    """Raw loaded object -> checked canonical state dict."""
    if layout not in CONVERTERS:
        raise ModelError(f"unknown checkpoint layout {layout!r}; expected one of {sorted(CONVERTERS)}")
    try:
        state = CONVERTERS[layout](obj)
    except LayoutError as exc:
        raise LayoutError(f"{where}: {exc}") from None
    return finalise(state, arch, where)


# --- a user entry's own checkpoint, converted on load ------------------------------------------------

def load_original(spec: ModelSpec, module: Any = None) -> tuple[State, str]:
    """(checked canonical state, hash) of a model whose own checkpoint is converted each time it loads (user entries:
    ``extra['original_checkpoint']``, optional ``extra['strip_prefix']``). Read with weights_only (Lightning's
    harmless hyper-parameter classes allowed), converted with ``spec.layout``, strict- and finite-checked; the hash
    covers the file and how it was read, so it keys the feature cache like a converted file's hash."""
    path = Path(spec.extra["original_checkpoint"])
    prefix = str(spec.extra.get("strip_prefix") or "")
    declared = spec.extra.get("declared_in")
    where = (f"{declared}: model {spec.name!r} (fields 'checkpoint', 'architecture', 'layout') from {path}" if declared
             else f"model {spec.name!r} from {path}")
    if not path.is_file():
        raise ModelError(f"{where}: checkpoint file does not exist")
    if prefix:
        try:
            raw = strip_prefix(safe_load(path, allow=SAFE_GLOBALS["mimic_chexpert"]), prefix)
        except LayoutError as exc:
            raise LayoutError(f"{where}: {exc}") from None
    else:
        raw = read_original(spec.layout, path)
    state = convert_object(spec.layout, raw, spec.arch, where=where)
    digest = f"{sha256_file(path)}|{spec.layout}|{prefix}|v{CONVERTER_VERSION}"
    return state, hashlib.sha256(digest.encode()).hexdigest()[:16]


# --- the whole path -------------------------------------------------------------------------------

def original_path(spec: ModelSpec, weights_dir: str | Path) -> Path:
    return Path(weights_dir) / (spec.filename or f"{spec.name}.original")


def verify_source(spec: ModelSpec, path: Path, digest: str | None = None) -> tuple[str, bool | None]:
    """(sha256 of the file, whether it matched the spec's hash; None when the spec has none)."""
    digest = digest or sha256_file(path)
    if spec.sha256:
        return digest, digest == spec.sha256.lower()
    prefix = spec.extra.get("sha256_prefix")
    if prefix:
        return digest, digest.startswith(str(prefix).lower())
    return digest, None


def read_manifest(weights_dir: str | Path) -> dict:
    path = Path(weights_dir) / MANIFEST
    if not path.is_file():
        return {"version": 1, "models": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"weights manifest {path} is not valid JSON ({exc}); delete it and convert again") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ModelError(f"weights manifest {path}: expected {{'version': 1, 'models': {{...}}}}")
    return data


def convert(name: str | ModelSpec, source_path: str | Path, weights_dir: str | Path) -> Path:
    """Convert the original checkpoint of ``name`` into ``weights_dir/<name>.pt``; return that path.

    ``name`` may also be a ``ModelSpec`` (tests, unregistered variants). Every check runs before
    anything is written: on any error ``weights_dir`` is unchanged.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    source = Path(source_path)
    if spec.layout not in CONVERTERS:
        raise ModelError(f"model {spec.name!r}: unknown checkpoint layout {spec.layout!r}; "
                         f"expected one of {sorted(CONVERTERS)}")
    if not source.is_file():
        raise ModelError(f"model {spec.name!r}: original checkpoint not found: {source}")
    digest, ok = verify_source(spec, source)
    if ok is False:
        expected = spec.sha256 or f"{spec.extra.get('sha256_prefix')}..."
        raise ModelError(f"model {spec.name!r}: {source} has sha256 {digest}, expected {expected}; "
                         "the file is corrupt or another file")
    raw = read_original(spec.layout, source)
    state = convert_object(spec.layout, raw, spec.arch, where=f"model {spec.name!r} from {source}")
    manifest = read_manifest(weights_dir)
    target = Path(weights_dir) / f"{spec.name}.pt"
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
        converted = sha256_file(tmp)
        manifest["models"][spec.name] = {
            "source": source.name, "source_sha256": digest, "source_verified": ok,
            "converted": target.name, "converted_sha256": converted, "layout": spec.layout,
            "arch": spec.arch, "converter_version": CONVERTER_VERSION,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(Path(weights_dir) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return target
