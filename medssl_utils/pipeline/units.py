"""What the grid is made of: a unit of work and the record that says how a protocol runs one.

A ``Protocol`` record is to the grid what a ``ModelSpec`` is to the model registry: data, not code paths.
The runner (``grid``) knows nothing of few-shot episodes or saliency maps; it asks each record which
(model, dataset) pairs it applies to, which settings shape its numbers, what the content key of a unit's
inputs is, and how to compute one unit's rows.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable, Sequence

from ..config import Config
from ..results import code_version, unit_name


@dataclass(frozen=True)
class Unit:
    protocol: str
    model: str
    dataset: str

    def name(self, cfg: Config) -> str:
        return unit_name(protocol=self.protocol, model=self.model, dataset=self.dataset,
                         profile=cfg.profile, seed=cfg.seed)


class Settings:
    """Base of the frozen per-protocol settings: every field is a value that changes a unit's numbers (the
    unit name holds model, dataset, profile and seed; the input key holds weights, preprocessing and pixels).
    ``as_dict`` is what each row stores under ``extra.settings``; a stored unit whose dict differs is redone."""

    def as_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))   # type: ignore[call-overload]


@dataclass(frozen=True)
class Protocol:
    """How the grid runs one protocol (a transfer protocol of Q1/Q2 or a Q3 analysis)."""
    name: str
    question: str                                                   # the rows' ``question``: "Q1" or "Q3"
    run: Callable[[Config, Unit, Settings], tuple[list[dict], dict]]   # -> (rows, outcome arrays)
    settings: Callable[[Config], Settings]
    models: Callable[[Config], Sequence[str]]                       # the default models of the grid
    datasets: Callable[[Config, Sequence[str] | None], list[str]]  # the datasets (given or the run's)
    applies: Callable[[Config, str, str], bool]                     # (cfg, model, dataset) -> runs here?
    input_key: Callable[[Config, Unit], str]                        # content key of the unit's inputs
    seeded: bool = False     # run under a forked torch RNG seeded with cfg.seed (no state leaks between units)


def base_row(cfg: Config, unit: Unit, key: str, question: str = "Q1") -> dict:
    return {"question": question, "protocol": unit.protocol, "model": unit.model, "dataset": unit.dataset,
            "seed": cfg.seed, "profile": cfg.profile, "source": "this run", "cache_key": key,
            "code_version": code_version()}
