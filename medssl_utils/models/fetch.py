"""Download the paper's original checkpoints, verify and convert them; report what is on disk.

``fetch`` needs the internet (or ``file://`` URLs); ``status`` never touches the network. Downloads go
to a temporary file beside the target and are renamed only once complete and verified, so an
interrupted or failed download leaves nothing behind.
"""
from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..storage import atomic_path, sha256_file
from .converters import convert, original_path, read_manifest, verify_source
from .registry import ModelError, ModelSpec, available, get_spec

CHUNK = 1 << 20


def _spec(name: str | ModelSpec) -> ModelSpec:
    return name if isinstance(name, ModelSpec) else get_spec(name)


def download(url: str, target: Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``target`` through a temporary file; one clear error when offline."""
    from ..progress import bar

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            with atomic_path(target) as tmp, open(tmp, "wb") as out, \
                    bar(total=int(total) if total else None, unit="B", unit_scale=True, desc=target.name,
                        enabled=progress, leave=False) as pbar:
                n = 0
                for block in iter(lambda: resp.read(CHUNK), b""):
                    out.write(block)
                    n += len(block)
                    pbar.update(len(block))
                out.flush()
                if total and n != int(total):
                    raise ModelError(f"download of {url} stopped after {n} of {total} bytes")
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelError(f"cannot download {url}: {reason}. No internet connection, or the link has moved; "
                         f"download the file by hand to {target} and run `medssl weights convert`") from None
    return target


def fetch(names: Iterable[str | ModelSpec] | str | None, weights_dir: str | Path, *, progress: bool = True,
          timeout: float = 60.0) -> dict[str, Path]:
    """Download missing originals (``None`` = every paper model), verify, convert; return canonical paths.

    Models that need a manual step (SimCLR-v1: a TensorFlow conversion) are reported, not guessed.
    Every model is attempted; the failures are raised together at the end, one line each.
    """
    if names is None:
        names = available("paper")
    elif isinstance(names, (str, ModelSpec)):
        names = [names]
    weights_dir = Path(weights_dir)
    done: dict[str, Path] = {}
    failures: list[str] = []
    for name in names:
        try:
            spec = _spec(name)
            done[spec.name] = _fetch_one(spec, weights_dir, progress=progress, timeout=timeout)
        except ModelError as exc:
            failures.append(f"{getattr(name, 'name', name)}: {exc}")
    if failures:
        raise ModelError(f"{len(failures)} of {len(failures) + len(done)} models not ready:\n  "
                         + "\n  ".join(failures))
    return done


def _fetch_one(spec: ModelSpec, weights_dir: Path, *, progress: bool, timeout: float) -> Path:
    row = _status_row(spec, weights_dir)
    if row["converted"] and row["verified"]:
        return Path(row["path"])
    source = original_path(spec, weights_dir)
    if not source.is_file():
        if spec.extra.get("manual"):
            raise ModelError(f"needs a manual step: {spec.extra['manual']}")
        if not spec.urls:
            raise ModelError("no download URL is known; put the original checkpoint at " + str(source))
        errors = []
        for url in spec.urls:
            try:
                download(url, source, progress=progress, timeout=timeout)
                break
            except ModelError as exc:
                errors.append(str(exc))
        else:
            raise ModelError("; ".join(errors))
        _, ok = verify_source(spec, source)
        if ok is False:
            source.unlink()
            raise ModelError(f"downloaded {source.name} does not match the expected sha256; deleted it")
    return convert(spec, source, weights_dir)


def _status_row(spec: ModelSpec, weights_dir: Path, manifest: dict | None = None) -> dict:
    manifest = read_manifest(weights_dir) if manifest is None else manifest
    source = original_path(spec, weights_dir)
    target = weights_dir / f"{spec.name}.pt"
    entry = manifest["models"].get(spec.name)
    converted = target.is_file()
    verified = bool(converted and entry and entry.get("converted_sha256") == sha256_file(target)
                    and entry.get("source_verified") is not False)
    return {"model": spec.name, "present": source.is_file(), "converted": converted, "verified": verified,
            "path": str(target if converted else source), "layout": spec.layout,
            "source_verified": None if not entry else entry.get("source_verified"),
            "manual": bool(spec.extra.get("manual"))}


def status(weights_dir: str | Path, names: Iterable[str | ModelSpec] | None = None) -> pd.DataFrame:
    """One row per model: original present, converted, converted file matches its manifest entry, path.

    ``verified`` means the ``.pt`` file's sha256 equals the one recorded when it was converted (and the
    source did not fail its own check). ``source_verified`` is None when no reference hash is known.
    """
    weights_dir = Path(weights_dir)
    specs = [_spec(n) for n in (available("paper") if names is None else names)]
    manifest = read_manifest(weights_dir)
    rows = [_status_row(s, weights_dir, manifest) for s in specs]
    return pd.DataFrame(rows, columns=["model", "present", "converted", "verified", "path", "layout",
                                       "source_verified", "manual"])
