"""Executing the parameterised notebooks with papermill into the folder the book renders from.

A notebook is re-executed only when its stamp changes: the hash of the source notebook, the profile
file, the parameter overrides and the package's code and data. The injected-parameters cell is tagged
``remove-cell`` so the rendered page does not show it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import nbformat

from .config import load_profile, profile_path, project_root, resolve
from .errors import MedsslError
from .progress import ENV as PROGRESS_ENV, terminal_target
from .storage import atomic_path

NOTEBOOKS = ("q1_supervised_vs_selfsupervised", "q2_domain_specific", "q3_what_features_encode",
             "reproduction", "budget", "datasets", "models", "methods", "own_model_dataset")


def package_digest() -> str:
    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".yml", ".csv", ".json", ".pt"} and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def stamp(source: Path, profile: str, params: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(profile_path(profile).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(package_digest().encode())
    from .user_entries import declared_digest

    h.update(declared_digest().encode())     # a changed YAML, checkpoint or image folder re-executes
    return h.hexdigest()[:20]


def _current_stamp(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return nbformat.read(path, as_version=4).metadata.get("medssl", {}).get("stamp")
    except Exception:
        return None


def run_notebooks(profile: str, out_dir: str | Path, *, names: Iterable[str] | None = None,
                  params: dict[str, Any] | None = None, force: bool = False, suffix: str = "",
                  log=print) -> list[Path]:
    """Validate the config once, then execute each notebook whose stamp changed. Returns the outputs."""
    import papermill as pm

    params = dict(params or {})
    from .preflight import check_files

    check_files(resolve(profile, **params))    # fail before any work, with one clear line
    root = project_root()
    src_dir, out_dir = root / "notebooks", Path(out_dir)
    if not out_dir.is_absolute():
        out_dir = root / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    def rel(p: Path) -> Path:
        return p.relative_to(root) if p.is_relative_to(root) else p

    # kernels draw their bars on this terminal (see medssl_utils.progress); never into the notebooks
    target = terminal_target()
    if target:
        os.environ[PROGRESS_ENV] = target
    else:
        os.environ.pop(PROGRESS_ENV, None)
    names = list(names or NOTEBOOKS)
    unknown = [n for n in names if not (src_dir / f"{n}.ipynb").is_file()]
    if unknown:
        raise MedsslError(f"unknown notebook(s) {unknown}; expected some of {', '.join(NOTEBOOKS)}")
    done = []
    for name in names:
        src = src_dir / f"{name}.ipynb"
        out = out_dir / f"{name}{suffix}.ipynb"
        st = stamp(src, profile, params)
        if not force and _current_stamp(out) == st:
            log(f"{rel(out)}: up to date (stamp {st})")
            done.append(out)
            continue
        log(f"executing {rel(src)} -> {rel(out)} (profile {profile})")
        injected = {**load_profile(profile), **params, "profile": profile}
        with atomic_path(out.with_suffix(".ipynb")) as tmp:
            try:
                pm.execute_notebook(str(src), str(tmp), parameters=injected, cwd=str(root),
                                    progress_bar=sys.stderr.isatty(), kernel_name="python3", log_output=False)
            except pm.PapermillExecutionError as exc:
                if exc.ename in _package_errors():   # bad input found inside the notebook: one line
                    raise MedsslError(f"{rel(src)}: {exc.ename}: {exc.evalue}") from None
                raise
            nb = nbformat.read(tmp, as_version=4)
            _finish(nb, st, profile)
            nbformat.write(nb, tmp)
        done.append(out)
    return done


def _package_errors() -> set[str]:
    """Names of the package's bad-input error classes (a kernel reports only the class name)."""
    from .errors import MedsslError as base

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub.__name__
            yield from walk(sub)

    import importlib

    for mod in ("pipeline.grid", "protocols.linear", "protocols.finetune", "stats", "book.pages",
                "book.deviations", "reference", "user_entries", "models.converters", "models.checkpoints"):
        importlib.import_module(f"medssl_utils.{mod}")   # the modules that define the subclasses
    return {base.__name__, *walk(base)}


def _finish(nb, st: str, profile: str) -> None:
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        # papermill's per-cell timing metadata changes every run; it is noise in the committed smoke notebooks
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["medssl"] = {"stamp": st, "profile": profile}
