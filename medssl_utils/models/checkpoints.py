"""Finding and loading checkpoints without ever running code stored in them.

The canonical form is a plain state dict saved as ``weights_dir/<name>.pt`` by ``converters.convert``;
``load_canonical`` reads it with ``weights_only=True`` and returns it with its short hash, after checking
that it fits the architecture, is the file recorded for that model in ``weights_dir/manifest.json`` and is
finite (a wrong file fails with one line naming it, instead of loading silently or deep inside torch).

Original checkpoints come in two kinds of file:

* PyTorch files (``torch.save``): read by ``safe_load`` with ``weights_only=True``. A layout whose files
  hold harmless metadata classes (an argparse ``Namespace``, a Lightning ``AttributeDict``) passes an
  explicit allow-list; every other global is refused, naming the file and the global.
* Plain pickles of numpy arrays (the BYOL Haiku checkpoint): read by ``load_array_pickle``, a restricted
  unpickler that rebuilds only builtin containers and numpy arrays. Container classes of the JAX stack
  (``byol.``, ``haiku.``, ``optax.``, ``jax.``) become inert ``PickledRecord`` objects: their modules are
  never imported and nothing from the file is ever called. Any other global is refused.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import torch
from torch import nn

from ..storage import sha256_file
from .registry import ModelError

if TYPE_CHECKING:
    from .registry import ModelSpec


class UnsafeCheckpointError(ModelError):
    """The file would import or call something outside the allow-list: it is refused, nothing runs."""

    globals: list[str] = []  # the refused dotted names, when known


class CorruptCheckpointError(ModelError):
    """The file is empty, truncated or not a checkpoint at all."""


def canonical_path(spec: "ModelSpec", weights_dir: str | Path | None) -> Path | None:
    if spec.extra.get("packaged_weights"):
        return Path(spec.extra["packaged_weights"])
    if weights_dir is None:
        return None
    return Path(weights_dir) / f"{spec.name}.pt"


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"missing checkpoint file: {path}")
    if path.stat().st_size == 0:
        raise CorruptCheckpointError(f"checkpoint file {path} is empty (0 bytes); download it again")


def safe_load(path: str | Path, *, allow: Iterable[Any] = ()) -> Any:
    """``torch.load(weights_only=True)``; ``allow`` names the extra harmless globals a format needs.

    Items of ``allow`` are classes/functions or ``(stand_in, "dotted.name")`` pairs, as
    ``torch.serialization.safe_globals`` takes them.
    """
    path = Path(path)
    _check_file(path)
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(exc))))
        if names:
            err = UnsafeCheckpointError(
                f"refusing to load {path}: unpickling it would import or call {', '.join(names)}, which is "
                "not on the allow-list for this checkpoint format (a pickle that runs code is never loaded). "
                "Check that the file is the expected original checkpoint.")
            err.globals = names
            raise err from None
        raise CorruptCheckpointError(f"cannot read {path}: {_torch_reason(exc)}; the file is truncated, not "
                                     "a PyTorch checkpoint, or holds objects this format's allow-list does not "
                                     "cover") from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/ValueError/... for damaged files
        raise CorruptCheckpointError(f"cannot read {path} ({path.stat().st_size} bytes): "
                                     f"{type(exc).__name__}: {_first_line(exc)}. The file is truncated or "
                                     "not a PyTorch checkpoint; download it again.") from None


def _torch_reason(exc: BaseException) -> str:
    """The informative lines of torch's weights-only error, without its generic advice."""
    skip = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch 2.6")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith(skip)]
    return " ".join(lines) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


# --- plain pickles of numpy arrays -----------------------------------------------------------------

class PickledRecord:
    """An inert stand-in for an object of an allow-listed foreign class (never imported, never called).

    ``args`` are the constructor arguments the pickle gave, ``state`` what it would have set.
    """

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "PickledRecord":
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"PickledRecord({self.qualname}, {len(self.args)} args)"


def _record_class(qualname: str) -> type:
    return type("PickledRecord", (PickledRecord,), {"qualname": qualname})


def _numpy_globals() -> dict[str, Any]:
    from numpy._core import multiarray

    safe = {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar,
            "ndarray": np.ndarray, "dtype": np.dtype}
    out = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy"):
        for name, obj in safe.items():
            out[f"{mod}.{name}"] = obj
    from numpy._core import numeric

    for mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol >= 4 arrays
        out[f"{mod}._frombuffer"] = numeric._frombuffer
    out["numpy.array"] = np.array
    out["numpy.asarray"] = np.asarray
    return out


_SAFE_BUILTINS = {f"{m}.{t.__name__}": t for m in ("builtins", "__builtin__")
                  for t in (dict, list, tuple, set, frozenset, bytes, bytearray, str, int, float, complex,
                            bool, slice)}
_SAFE_BUILTINS["collections.OrderedDict"] = __import__("collections").OrderedDict


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles written by Python 3 spell ``bytes`` as ``_codecs.encode(str, 'latin1')``."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_SAFE_BUILTINS["_codecs.encode"] = _latin1_bytes
# dtype classes numpy >= 1.25 pickles by name, e.g. numpy.dtypes.Float32DType
_DTYPES_PREFIX = "numpy.dtypes."
# Container classes of the JAX stack that the BYOL checkpoint is built from: read as inert records.
RECORD_PREFIXES = ("byol.", "haiku.", "optax.", "jax.", "jaxlib.")


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path
        self.allowed = {**_SAFE_BUILTINS, **_numpy_globals()}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.allowed:
            return self.allowed[full]
        if full.startswith(_DTYPES_PREFIX) and name.endswith("DType"):
            import numpy.dtypes

            obj = getattr(numpy.dtypes, name, None)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                return obj
        if full.startswith(RECORD_PREFIXES):
            return _record_class(full)
        raise UnsafeCheckpointError(
            f"refusing to load {self.path}: the pickle would import or call {full}; only builtin containers, "
            f"numpy arrays and inert records of {', '.join(p.rstrip('.') for p in RECORD_PREFIXES)} classes "
            "are accepted (a pickle that runs code is never loaded)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError(f"refusing to load {self.path}: it uses pickle persistent ids "
                                    "(a torch.save file?), not a plain pickle of numpy arrays")


def load_array_pickle(path: str | Path) -> Any:
    """Read a plain pickle of containers and numpy arrays; refuse anything that would run code."""
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"PK":
        raise CorruptCheckpointError(f"{path} is a zip archive (a torch.save file?), not a plain pickle of numpy "
                                     "arrays; is this the checkpoint of another model?")
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, path).load()
    except ModelError:
        raise
    except Exception as exc:  # EOFError, UnpicklingError, ValueError... for damaged files
        raise CorruptCheckpointError(f"cannot read {path} ({path.stat().st_size} bytes) as a pickle: "
                                     f"{type(exc).__name__}: {_first_line(exc)}. The file is truncated or "
                                     "not a pickle; download it again.") from None


# --- canonical weights ----------------------------------------------------------------------------

def load_canonical(spec: "ModelSpec", weights_dir: str | Path | None, module: nn.Module) -> tuple[dict | None, str]:
    """Return (state dict or None for a random-init model, weights hash).

    Before anything is returned the file must fit ``module`` key by key and shape by shape, be the file recorded
    for this model (the ``weights_dir`` manifest that ``convert`` writes; the registered sha256 for packaged
    weights) and hold only finite values: each failure is one line naming the model and the file.
    """
    if "init_seed" in spec.extra:  # random-init models (baselines, tests) carry their init seed
        seed = int(spec.extra.get("init_seed", 0))
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return None, f"random-init-seed{seed}"
    path = canonical_path(spec, weights_dir)
    if path is None or not path.is_file():
        raise ModelError(f"model {spec.name!r}: converted weights not found at {path}; "
                         f"run `medssl weights fetch {spec.name}` (needs the internet) or "
                         f"`medssl weights convert {spec.name} --source FILE`")
    state = safe_load(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"model {spec.name!r}: {path} is not a canonical state dict (name -> tensor); "
                         "convert the original checkpoint with `medssl weights convert`")
    check_fits(spec, path, state, module)
    digest = sha256_file(path)
    check_provenance(spec, path, digest)
    bad = first_non_finite(state)
    if bad:
        raise ModelError(f"model {spec.name!r}: {path} holds non-finite (NaN/inf) weights, first in {bad}; the file "
                         f"is damaged or from a diverged training run: convert a good original with "
                         f"`{_convert_command(spec, path)}`")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, digest[:16]


def first_non_finite(state: dict) -> str | None:
    """'key (k of n values)' for the first floating tensor holding NaN/inf, or None."""
    for key, value in state.items():
        if value.is_floating_point():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                return f"{key!r} ({int((~finite).sum())} of {value.numel()} values)"
    return None


def _convert_command(spec: "ModelSpec", path: Path) -> str:
    return f"medssl weights convert {spec.name} --source FILE --weights-dir {path.parent}"


def check_fits(spec: "ModelSpec", path: Path, state: dict, module: nn.Module) -> None:
    """One line for weights of another architecture: the first offending key and, if one fits, the architecture."""
    template = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    shapes = [k for k in template if k in state and tuple(state[k].shape) != template[k]]
    missing = [k for k in template if k not in state]
    unexpected = [k for k in state if k not in template]
    if not (shapes or missing or unexpected):
        return
    if shapes:
        first = f"{shapes[0]} has shape {tuple(state[shapes[0]].shape)} in the file, {spec.arch} expects {template[shapes[0]]}"
    elif missing:
        first = f"key {missing[0]!r} is missing"
    else:
        first = f"key {unexpected[0]!r} is not part of {spec.arch}"
    guess = _fitting_architecture(state)
    looks = f" (it looks like {guess} weights)" if guess else ""
    raise ModelError(f"model {spec.name!r}: {path} does not hold {spec.arch} weights{looks}: {first}; {len(shapes)} "
                     f"shape mismatch(es), {len(missing)} missing and {len(unexpected)} unexpected key(s). Is it the file "
                     f"of another model? Convert this model's original with `{_convert_command(spec, path)}`")


def _fitting_architecture(state: dict) -> str | None:
    """The registered architecture whose keys and shapes the state matches exactly (error messages only)."""
    from .architectures import ARCHITECTURES
    from .converters import _template

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for arch in ARCHITECTURES:
        try:
            if _template(arch) == shapes:
                return arch
        except Exception:  # an architecture that cannot be built on the meta device: no guess from it
            continue
    return None


def check_provenance(spec: "ModelSpec", path: Path, digest: str) -> None:
    """The file must be the one recorded for ``spec``: the registered sha256 for packaged weights, otherwise the
    entry ``convert`` wrote in ``weights_dir/manifest.json`` (another model's file or a hand-placed one is refused)."""
    from .converters import MANIFEST, read_manifest

    if spec.extra.get("packaged_weights"):
        if spec.sha256 and digest != spec.sha256.lower():
            raise ModelError(f"model {spec.name!r}: packaged weights {path} have sha256 {digest[:16]}..., the registry "
                             f"records {spec.sha256[:16]}...: the file was changed; reinstall the package or rebuild it")
        return
    manifest_path = path.parent / MANIFEST
    models = read_manifest(path.parent)["models"]
    entry = models.get(spec.name)
    others = sorted(n for n, e in models.items() if n != spec.name and isinstance(e, dict)
                    and e.get("converted_sha256") == digest)
    owner = f"; it is the converted file of {', '.join(map(repr, others))}" if others else ""
    fix = f"convert this model's original with `{_convert_command(spec, path)}`"
    if not isinstance(entry, dict):
        raise ModelError(f"model {spec.name!r}: {path} has no entry in the weights manifest {manifest_path}, so it cannot "
                         f"be checked to be this model's converted weights{owner}; {fix}")
    if entry.get("converted_sha256") != digest:
        why = owner or ": the file was changed or replaced after conversion"
        raise ModelError(f"model {spec.name!r}: {path} has sha256 {digest[:16]}..., the weights manifest {manifest_path} "
                         f"records {str(entry.get('converted_sha256'))[:16]}... for it{why}; {fix}")
    if entry.get("arch") not in (None, spec.arch):
        raise ModelError(f"model {spec.name!r}: the weights manifest {manifest_path} records {path.name} as {entry.get('arch')} "
                         f"weights, the registry says {spec.arch}; {fix}")
