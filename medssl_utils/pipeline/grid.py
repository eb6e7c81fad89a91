"""The one grid runner: every (protocol, model, dataset) unit of the transfer protocols and the Q3 analyses.

Each unit writes its own rows (and outcome arrays) through ``ResultsStore``, so a grid can be split across
workers (``shard=(i, n)``, RANK/WORLD_SIZE from torchrun, SLURM variables, or an executor of ``scale``),
finished units are skipped, and the results never depend on how many workers ran or in which order. A unit
is done when its rows exist with the current settings and the current inputs' content key: a changed switch,
a regenerated dataset or new weights redo it.
"""
from __future__ import annotations

import json
import os
import time
from functools import partial
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..config import Config
from ..errors import MedsslError
from ..results import ResultsStore
from . import analyses, transfer
from .units import Protocol, Settings, Unit

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (*transfer.PROTOCOLS, *analyses.PROTOCOLS)}
TRANSFER = tuple(p.name for p in transfer.PROTOCOLS)     # fewshot, linear, finetune (Q1 and Q2)
ANALYSES = tuple(p.name for p in analyses.PROTOCOLS)     # saliency, reconstruction, invariance (Q3)


def check_protocols(names: Iterable[str], what: str = "--protocols") -> list[str]:
    """The names, each one known; one clear error for a typo (which would otherwise run nothing)."""
    names = list(names)
    bad = [n for n in names if n not in PROTOCOLS]
    if bad or not names:
        raise MedsslError(f"{what}: unknown protocol(s) {bad or names}; expected some of {', '.join(PROTOCOLS)}")
    return names


# ---------------------------------------------------------------- shards
def shard_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun (RANK/WORLD_SIZE) or SLURM array/task variables; (0, 1) otherwise."""
    for rank_key, size_key in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"),
                               ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")):
        if rank_key in os.environ and size_key in os.environ:
            return int(os.environ[rank_key]), int(os.environ[size_key])
    return 0, 1


def my_units(units: list[Unit], shard: tuple[int, int] | None) -> list[Unit]:
    rank, size = shard if shard is not None else shard_from_env()
    if not 0 <= rank < size:
        raise MedsslError(f"shard {rank}/{size}: expected 0 <= i < n (e.g. --shard 0/4)")
    return [u for k, u in enumerate(units) if k % size == rank]


# ---------------------------------------------------------------- plan, skip, run, collect
def plan(cfg: Config, protocols: Iterable[str], *, models: Sequence[str] | None = None,
         datasets: Sequence[str] | None = None) -> list[Unit]:
    """Every unit of the grid, in a fixed order (protocol, dataset, model): the shards split this list."""
    units = []
    for name in check_protocols(protocols, "protocols"):
        rec = PROTOCOLS[name]
        chosen = list(models or rec.models(cfg))
        for d in rec.datasets(cfg, datasets):
            units += [Unit(name, m, d) for m in chosen if rec.applies(cfg, m, d)]
    return units


def is_current(cfg: Config, unit: Unit, settings: Settings | None = None, store: ResultsStore | None = None) -> bool:
    """Done, with these settings and the current inputs."""
    store = store or ResultsStore(cfg.results_dir)
    rec = PROTOCOLS[unit.protocol]
    name = unit.name(cfg)
    if not store.has(name):
        return False
    settings = settings or rec.settings(cfg)
    try:
        stored = store.read_unit(name)
        same = json.loads(stored.extra.iloc[0]).get("settings") == settings.as_dict()
        return same and str(stored.cache_key.iloc[0]) == rec.input_key(cfg, unit)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):  # unreadable / old file: not done
        return False


def run_unit(cfg: Config, unit: Unit, settings: Settings | None = None) -> None:
    """Compute one unit and write its rows (outcomes first: the rows file marks it done)."""
    rec = PROTOCOLS[unit.protocol]
    settings = settings or rec.settings(cfg)
    t0 = time.perf_counter()
    if rec.seeded:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            rows, outcomes = rec.run(cfg, unit, settings)
    else:
        rows, outcomes = rec.run(cfg, unit, settings)
    outcomes["seconds"] = np.array([time.perf_counter() - t0])
    ResultsStore(cfg.results_dir).write(unit.name(cfg), rows, outcomes)


def run_unit_elsewhere(cfg: Config, unit: Unit) -> None:
    """``run_unit`` in a process that did not resolve ``cfg`` (an executor's worker): the run's own models and
    datasets (``extra_models``/``extra_datasets``) are registered there first, as ``config.resolve`` did here."""
    from ..user_entries import register_files

    register_files(cfg.extra_models, cfg.extra_datasets)
    run_unit(cfg, unit)


def collect(cfg: Config, units: Iterable[Unit]) -> pd.DataFrame:
    """The stored rows of these units (those that exist), one frame, in the units' order (the plan's)."""
    store = ResultsStore(cfg.results_dir)
    names = list(dict.fromkeys(u.name(cfg) for u in units))
    frames = [store.read_unit(n) for n in names if store.has(n)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run(cfg: Config, protocols: Iterable[str], *, models: Sequence[str] | None = None,
        datasets: Sequence[str] | None = None, shard: tuple[int, int] | None = None, progress: bool = True,
        executor: str | None = None, executor_options: dict | None = None) -> pd.DataFrame:
    """Run every unit this worker owns that is not done with the current settings and inputs; return the rows
    of every unit of the grid that is done with them (from any worker). ``executor`` (default: the run's
    ``executor`` parameter) says where the units run; the rows do not depend on it."""
    from ..preflight import before_units
    from ..progress import bar

    units = plan(cfg, protocols, models=models, datasets=datasets)
    settings = {name: PROTOCOLS[name].settings(cfg) for name in {u.protocol for u in units}}
    store = ResultsStore(cfg.results_dir)
    current = {u for u in units if is_current(cfg, u, settings[u.protocol], store)}
    todo = [u for u in my_units(units, shard) if u not in current]
    before_units(cfg, todo, progress=progress)   # missing files, small classes, bad images: before any extraction
    executor = executor or cfg.executor
    if executor == "local":
        for u in bar(todo, desc="units", enabled=progress and bool(todo)):
            run_unit(cfg, u, settings[u.protocol])
    else:
        from ..scale.executors import execute

        failed = execute(todo, partial(run_unit_elsewhere, cfg), is_done=partial(is_current, cfg), executor=executor,
                         options=cfg.executor_options if executor_options is None else executor_options,
                         progress=progress)
        if failed:
            raise MedsslError(f"executor {executor!r}: {len(failed)} unit(s) did not finish after retries, e.g. "
                              f"{failed[0].name(cfg)}; rerun the same command to retry them")
    done = current | set(todo)
    return collect(cfg, [u for u in units if u in done])


def outcome(cfg: Config, protocol: str, model: str, data: str, name: str) -> np.ndarray:
    """A stored outcome array of one unit (e.g. ``"test_correct"``, ``"saliency_map"``, ``"reconstruction"``)."""
    return ResultsStore(cfg.results_dir).outcomes(Unit(protocol, model, data).name(cfg), name)
