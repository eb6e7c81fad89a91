"""Resumable mini-zoo training: a long budget is built in stretches that together follow one trajectory.

The whole training state (learner parameters and buffers, including MoCo's key encoder and queue and BYOL's
target; the SGD state; the step, the epoch permutation and its position; the CPU generators; the losses so
far) is written atomically to a state file every ``save_every`` steps and whenever a stretch stops. A run
resumed from it takes exactly the steps an uninterrupted run would have taken: on one machine with the same
thread count the final weights are bit-identical (tests/test_minizoo_budget.py). State files are working
files, not part of the zoo: by default under ``.cache/medssl/minizoo-state/`` (git-ignored).
"""
from __future__ import annotations

import datetime
import io
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ...errors import MedsslError
from ...storage import atomic_write_bytes
from .arch import MiniResNet, build_mini_resnet18_w16
from .recipes import Learner, Recipe, Stage, build_learner, lr_at

STATE_VERSION = 1
DEFAULT_STATE_DIR = Path(".cache/medssl/minizoo-state")   # relative to the working directory, like cache_dir


class MinizooStateError(MedsslError):
    """A state file that does not belong to the run asked for, or cannot be read."""


class Stop:
    """When a stretch ends: after ``max_steps`` steps in this call, at ``deadline`` (``time.time()``), or once
    SIGINT/SIGTERM arrived (see ``stop_on_signals``). Called once before every step; True means stop there."""

    def __init__(self, max_steps: int | None = None, deadline: float | None = None) -> None:
        self.max_steps, self.deadline = max_steps, deadline
        self.taken, self.signalled = 0, False

    def __call__(self) -> bool:
        if self.signalled or (self.max_steps is not None and self.taken >= self.max_steps) \
                or (self.deadline is not None and time.time() >= self.deadline):
            return True
        self.taken += 1
        return False

    def expired(self) -> bool:
        """The deadline passed or a signal came (no step counted): the stretch takes on no new model."""
        return self.signalled or (self.deadline is not None and time.time() >= self.deadline)


@contextmanager
def stop_on_signals(stop: Stop) -> Iterator[Stop]:
    """SIGINT/SIGTERM end the stretch at the next step boundary (state saved) instead of killing the run."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        stop.signalled = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------------------------------------------
# one stage
# ----------------------------------------------------------------------------------------------------------

def run_stage(learner: Learner, stage: Stage, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
              *, steps: int | None = None, batch_size: int | None = None, resume: dict | None = None,
              stop: Callable[[], bool] | None = None, save: Callable[[dict], None] | None = None,
              save_every: int = 0, progress: Callable[[int, float], None] | None = None
              ) -> tuple[list[float], dict | None]:
    """SGD with warmup + cosine over ``stage.steps`` (or ``steps``); epochs are seeded permutations.

    Returns the losses and ``None`` when the stage finished, or the position to save when ``stop`` ended it.
    Without ``resume``/``stop`` this is exactly the loop every published 1x checkpoint was trained with.
    """
    steps = stage.steps if steps is None else steps
    bs = min(stage.batch_size if batch_size is None else batch_size, len(images))
    opt = torch.optim.SGD(learner.param_groups(), lr=stage.lr, momentum=stage.momentum, weight_decay=stage.weight_decay)
    sched_stage = stage if steps == stage.steps else Stage(**{**stage.__dict__, "steps": steps,
                                                              "warmup": min(stage.warmup, steps // 2)})
    learner.train()
    if resume is None:
        losses: list[float] = []
        perm, pos, start = torch.randperm(len(images), generator=gen), 0, 0
    else:
        opt.load_state_dict(resume["opt"])
        gen.set_state(resume["gen"])
        losses, perm, pos, start = list(resume["losses"]), resume["perm"], resume["pos"], resume["step"]

    def position(step: int) -> dict:
        return {"step": step, "perm": perm, "pos": pos, "losses": list(losses), "opt": opt.state_dict(),
                "gen": gen.get_state(), "images": step * bs}

    for step in range(start, steps):
        if stop is not None and stop():
            return losses, position(step)
        if pos + bs > len(perm):
            perm, pos = torch.randperm(len(images), generator=gen), 0
        idx = perm[pos:pos + bs]
        pos += bs
        for g in opt.param_groups:
            g["lr"] = lr_at(sched_stage, step) * g.get("lr_mult", 1.0)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=stage.bf16):
            loss = learner.loss(images[idx], labels[idx], gen, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{stage.method} stage: loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        learner.after_step(step)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
        if save is not None and save_every and (step + 1) % save_every == 0 and step + 1 < steps:
            save(position(step + 1))
    return losses, None


# ----------------------------------------------------------------------------------------------------------
# state files
# ----------------------------------------------------------------------------------------------------------

def learner_state(learner: nn.Module) -> dict:
    """Parameters, persistent buffers and the non-persistent ones too (lightly keeps MoCo's queue there)."""
    return {"params": learner.state_dict(), "buffers": {k: v for k, v in learner.named_buffers()}}


def load_learner_state(learner: nn.Module, state: dict) -> None:
    learner.load_state_dict(state["params"])
    named = dict(learner.named_buffers())
    with torch.no_grad():
        for k, v in state["buffers"].items():
            named[k].copy_(v)


def write_state(path: Path, state: dict) -> None:
    """Atomic: serialised in memory, then written beside ``path`` and renamed over it."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def read_state(path: Path, key: dict) -> dict | None:
    """The state at ``path`` if there is one; a clear error when it was written for another run."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)   # generator states must stay on the CPU
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise MinizooStateError(f"{path}: not a readable mini-zoo state file ({type(exc).__name__}); "
                                "delete it to start the run again") from exc
    if state.get("version") != STATE_VERSION or state.get("key") != key:
        raise MinizooStateError(f"{path}: written for another run ({state.get('key', {}).get('name')}, other "
                                "stages, seed or overrides); delete it to start this one from step 0")
    return state


# ----------------------------------------------------------------------------------------------------------
# a whole recipe, in stretches
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one call of ``train_resumable`` did: ``backbone`` is set once every stage has finished."""

    backbone: MiniResNet | None
    curves: list[list[float]]
    state: dict
    stretch: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.backbone is not None


def run_key(name: str, recipe: Recipe, seed: int, steps: int | None, batch_size: int | None,
            init_sha256: str | None) -> dict:
    """What a state file must match to be resumed: the run's identity, not where or when it ran."""
    return {"name": name, "seed": seed, "stages": [dict(st.__dict__) for st in recipe.stages], "steps": steps,
            "batch_size": batch_size, "init_sha256": init_sha256}


def device_name(device: str) -> str:
    """Where a stretch ran, for the manifest: the GPU's name, or the CPU model."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return "cpu: " + (platform.processor() or platform.machine())


def train_resumable(recipe: Recipe, seed: int, sources, state_path: Path, key: dict, *,
                    init_state: dict | None = None, steps: int | None = None, batch_size: int | None = None,
                    stop: Callable[[], bool] | None = None, save_every: int = 200, device: str = "cpu",
                    progress: bool = False) -> Outcome:
    """``train_recipe`` that starts from (and keeps) ``state_path``: same seeds, same order of draws."""
    state = read_state(state_path, key) or {"version": STATE_VERSION, "key": key, "stage": 0,
                                                    "position": None, "curves": [], "stretches": []}
    t0, started = time.time(), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    first = _global_step(recipe, state, steps)
    torch.manual_seed(seed)
    backbone = build_mini_resnet18_w16()
    if init_state is not None:
        backbone.load_state_dict(init_state)
    backbone = backbone.to(device=device, memory_format=torch.channels_last)
    if state["stage"] >= len(recipe.stages):
        backbone.load_state_dict(state["backbone"])
        return Outcome(backbone.eval(), state["curves"], state)
    curves = [list(c) for c in state["curves"]]

    def save(k: int, learner: nn.Module, pos: dict | None, done_backbone: nn.Module | None = None) -> None:
        state.update(stage=k, position=pos, curves=curves, rng=torch.get_rng_state(),
                     learner=None if learner is None else learner_state(learner),
                     backbone=None if done_backbone is None else done_backbone.state_dict())
        write_state(state_path, state)

    for k in range(state["stage"], len(recipe.stages)):
        stage = recipe.stages[k]
        xtr, ytr, _, _, n_classes, _ = sources.get(stage.data)
        xtr, ytr = xtr.to(device), ytr.to(device)
        torch.manual_seed(seed * 1000 + k)
        learner = build_learner(stage, backbone, n_classes).to(device=device, memory_format=torch.channels_last)
        gen = torch.Generator().manual_seed(seed * 1000 + k)
        resume = state["position"] if k == state["stage"] else None
        if resume is not None:
            load_learner_state(learner, state["learner"])
            torch.set_rng_state(state["rng"])
        report = _reporter(recipe, seed, k, stage, steps) if progress else None
        losses, pos = run_stage(learner, stage, xtr, ytr, gen, steps=steps, batch_size=batch_size, resume=resume,
                                stop=stop, save=lambda p, k=k, lr=learner: save(k, lr, p),
                                save_every=save_every, progress=report)
        if pos is not None:
            save(k, learner, pos)
            return _finish(Outcome(None, curves + [losses], state), recipe, steps, batch_size, first, t0, started,
                           device, state_path)
        curves.append(losses)
    state.update(stage=len(recipe.stages), position=None, curves=curves, learner=None, backbone=backbone.state_dict())
    return _finish(Outcome(backbone.eval(), curves, state), recipe, steps, batch_size, first, t0, started, device,
                   state_path)


def _reporter(recipe: Recipe, seed: int, k: int, stage: Stage, steps: int | None) -> Callable[[int, float], None]:
    n, t0 = stage.steps if steps is None else steps, time.time()

    def report(step: int, loss: float) -> None:
        if step % 50 == 0 or step == n - 1:
            print(f"  [{recipe.key} s{seed} stage {k} {stage.method}/{stage.data}] step {step + 1}/{n} "
                  f"loss {loss:.4f} ({time.time() - t0:.0f}s)", flush=True)
    return report


def _stage_steps(recipe: Recipe, steps: int | None) -> list[int]:
    return [st.steps if steps is None else steps for st in recipe.stages]


def _global_step(recipe: Recipe, state: dict, steps: int | None) -> int:
    """Steps taken so far over all stages."""
    done = sum(_stage_steps(recipe, steps)[:state["stage"]])
    return done + (state["position"]["step"] if state.get("position") else 0)


def images_seen(recipe: Recipe, state: dict, steps: int | None, batch_size: int | None, sizes: list[int]) -> int:
    """Training images drawn so far (a SimCLR pair counts once): steps x batch per stage."""
    n = _stage_steps(recipe, steps)
    bs = [min(st.batch_size if batch_size is None else batch_size, size) for st, size in zip(recipe.stages, sizes)]
    k, pos = state["stage"], state.get("position")
    return sum(a * b for a, b in zip(n[:k], bs[:k])) + ((pos["step"] * bs[k]) if pos else 0)


def _finish(out: Outcome, recipe: Recipe, steps, batch_size, first: int, t0: float, started: str, device: str,
            state_path: Path) -> Outcome:
    """Append this stretch to the state's history and write it (the history travels with the state)."""
    last = _global_step(recipe, out.state, steps) if not out.done else sum(_stage_steps(recipe, steps))
    out.stretch = {"started": started, "wall_s": round(time.time() - t0, 1), "steps": [first, last],
                   "device": device_name(device), "threads": torch.get_num_threads(), "torch": str(torch.__version__)}
    if last > first or out.done or not out.state["stretches"]:
        out.state["stretches"].append(out.stretch)
        write_state(state_path, out.state)
    return out
