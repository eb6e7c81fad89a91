"""Pretraining budget as a measured axis (issue 17): each recipe at 1x, 4x, 16x today's images seen.

A budget multiplies every stage's steps; the warmup + cosine schedule (and BYOL's EMA schedule) is laid over
the TOTAL steps, so a 16x run is its own trajectory, not a 1x run continued. Budget checkpoints are named
``mini-<recipe>-b<B>-s<seed>`` (1x keeps today's names and files, which this module never writes) and
recorded in the manifest under ``budgets`` with images seen, wall time, where each stretch ran and both
probes (source labels and neutral). They register as models (``minizoo.__init__``); no profile lists them,
the budget page adds them.

Builds are resumable: ``medssl minizoo --budget 4 --all --continue --stretch-minutes 60`` trains for an hour,
saves the state (``resume.py``) and stops; the same command continues where it stopped, and publishes each
model when its last step is done. ``--worker`` lets several processes share the list (claim files).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...errors import MedsslError
from ...storage import atomic_write_bytes, sha256_file
from .arch import build_mini_resnet18_w16
from .recipes import RECIPES, Recipe, model_name, parse_name
from .resume import DEFAULT_STATE_DIR, Stop, read_state, run_key, train_resumable

BUDGETS = (1, 4, 16)


def budget_name(recipe: str, seed: int, budget: int) -> str:
    """'simclr', 0, 4 -> 'mini-simclr-b4-s0'; budget 1 is today's name."""
    return model_name(recipe, seed) if budget == 1 else f"mini-{recipe}-b{budget}-s{seed}"


def parse_budget_name(name: str) -> tuple[str, int, int]:
    """'mini-simclr-b4-s0' -> ('simclr', 0, 4); 'mini-simclr-s0' -> ('simclr', 0, 1)."""
    parts = name.split("-")
    if len(parts) == 4 and parts[2][:1] == "b" and parts[2][1:].isdigit() and int(parts[2][1:]) >= 1:
        recipe, seed = parse_name("-".join(parts[:2] + parts[3:]))
        return recipe, seed, int(parts[2][1:])
    return (*parse_name(name), 1)


def budget_recipe(recipe: Recipe, budget: int, steps: int | None = None) -> Recipe:
    """Every stage's steps (or ``steps``, tests only) times ``budget``; batch, lr and warmup unchanged."""
    if budget < 1:
        raise MedsslError(f"budget {budget}: expected a positive multiple of today's images seen (1, 4, 16)")

    def scale(st):
        n = (st.steps if steps is None else steps) * budget
        return dataclasses.replace(st, steps=n, warmup=st.warmup if steps is None else min(st.warmup, n // 2))

    title = recipe.title if budget == 1 else f"{recipe.title} x{budget}"
    return dataclasses.replace(recipe, title=title, stages=tuple(scale(st) for st in recipe.stages))


@dataclass
class Build:
    """Where a budget build reads and writes, and how it trains (shared by every model of one command)."""

    out: Path
    manifest: Path
    sources: Any
    state_dir: Path = DEFAULT_STATE_DIR
    save_every: int = 200
    threads: int = 1
    device: str = "cpu"
    progress: bool = True
    resume: bool = True            # False: an existing state file is an error (the CLI without --continue)
    steps: int | None = None       # tests: per-stage steps at 1x (then times the budget)
    batch_size: int | None = None  # tests


def budget_records(manifest: Path) -> dict[str, dict]:
    return json.loads(manifest.read_text()).get("budgets", {}) if manifest.is_file() else {}


def is_built(name: str, b: Build) -> bool:
    rec = budget_records(b.manifest).get(name)
    path = b.out / f"{name}.pt"
    return bool(rec) and path.is_file() and sha256_file(path) == rec["sha256"]


def state_file(b: Build, name: str) -> Path:
    return Path(b.state_dir) / f"{name}.state.pt"


def continue_build(name: str, budget: int, b: Build, stop: Stop) -> str:
    """Train ``name`` (a 1x name) at ``budget`` until done or ``stop``: 'published', 'paused' or 'skipped'."""
    from .train import WEIGHTS_DIR, load_half

    recipe_key, seed = parse_name(name)
    target = budget_name(recipe_key, seed, budget)
    if budget == 1 and Path(b.out).resolve() == WEIGHTS_DIR:
        raise MedsslError(f"{target}: budget 1 is the committed zoo and is never retrained in place; "
                          "pass --out DIR to rebuild it elsewhere")
    if is_built(target, b):
        return "skipped"
    recipe = budget_recipe(RECIPES[recipe_key], budget, b.steps)
    init_state, init_rec = None, None
    if recipe.init_from:
        parent = budget_name(recipe.init_from, seed, budget)
        if continue_build(model_name(recipe.init_from, seed), budget, b, stop) == "paused":
            return "paused"
        init_state = load_half(b.out / f"{parent}.pt")
        init_rec = {"name": parent, "sha256": sha256_file(b.out / f"{parent}.pt")}
    path = state_file(b, target)
    key = run_key(target, recipe, seed, None, b.batch_size, init_rec and init_rec["sha256"])
    if not b.resume and path.is_file():
        raise MedsslError(f"{target}: a stretch is already saved in {path}; pass --continue to resume it "
                          "(or delete the file to start again)")
    read_state(path, key)                      # a foreign state file fails before any data is built
    for st in recipe.stages:
        b.sources.get(st.data)
    torch.set_num_threads(b.threads)
    out = train_resumable(recipe, seed, b.sources, path, key, init_state=init_state, batch_size=b.batch_size,
                          stop=stop, save_every=b.save_every, device=b.device, progress=b.progress)
    if not out.done:
        if b.progress:
            done = out.stretch["steps"][1]
            print(f"{target}: paused at step {done}/{sum(st.steps for st in recipe.stages)} (state {path}); "
                  "run the same command again to continue", flush=True)
        return "paused"
    publish_budget(_record(target, recipe_key, recipe, seed, budget, out, init_rec, b), b.manifest)
    path.unlink(missing_ok=True)
    return "published"


def _record(target: str, recipe_key: str, recipe: Recipe, seed: int, budget: int, out, init_rec, b: Build) -> dict:
    """Write the float16 checkpoint and return its manifest record (probes on the published weights, on CPU)."""
    from .neutral import neutral_probe
    from .resume import images_seen
    from .train import checkpoint_bytes, load_half, make_record, probe, probe_keys

    path = b.out / f"{target}.pt"
    b.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, checkpoint_bytes(out.backbone.cpu()))
    published = build_mini_resnet18_w16()
    published.load_state_dict(load_half(path))
    t1 = time.time()
    acc = probe(published, b.sources, probe_keys(b.sources))
    neutral = neutral_probe(published, b.sources)
    stretches = out.state["stretches"]
    rec = make_record(target, recipe_key, recipe, seed, path, b.sources, out.curves, init_rec,
                      sum(s["wall_s"] for s in stretches), time.time() - t1, stretches[-1]["threads"], acc)
    sizes = [len(b.sources.get(st.data)[0]) for st in recipe.stages]
    rec.update(budget=budget, base_model=model_name(recipe_key, seed), neutral_probe=neutral, stretches=stretches,
               images_seen=images_seen(recipe, out.state, None, b.batch_size, sizes),
               devices=sorted({s["device"] for s in stretches}))
    if b.steps is not None or b.batch_size is not None:
        rec["overrides"] = {"steps": b.steps, "batch_size": b.batch_size}
    if b.progress:
        print(f"{target}: published, {rec['images_seen']:,} images seen in {rec['wall_time_s']:.0f}s, probe {acc}, "
              f"neutral {neutral}", flush=True)
    return rec


def publish_budget(record: dict, manifest: Path) -> None:
    """Into ``budgets``: the committed 1x records under ``models`` are never touched."""
    from .train import manifest_lock

    with manifest_lock(manifest) as data:
        data.setdefault("budgets", {})[record["name"]] = record


def build_all(names: list[str], budget: int, b: Build, stop: Stop) -> dict[str, str]:
    """Each model in order until one pauses (the stretch is over): {name: status}."""
    status = {}
    for name in names:
        status[name] = continue_build(name, budget, b, stop)
        if status[name] == "paused":
            break
    return status


def work(names: list[str], budget: int, b: Build, stop: Stop) -> dict[str, str]:
    """Like ``build_all``, but several processes share ``names``: each claims a model (an O_EXCL file
    holding its pid) whose init parent is built, and releases it when it pauses or publishes."""
    claims = b.out / f".claims-b{budget}"
    claims.mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    while not stop.expired():
        todo = [n for n in names if not is_built(budget_name(*parse_name(n), budget), b)]
        if not todo:
            break
        ready = [n for n in todo if _parent_built(n, budget, b)]
        name = next((n for n in ready if _claim(claims / n)), None)
        if name is None:
            if all(_claimed(claims / n) for n in todo):
                break                          # everything left is someone else's
            time.sleep(5)                      # waiting for a parent
            continue
        try:
            status[name] = continue_build(name, budget, b, stop)
        finally:
            (claims / name).unlink(missing_ok=True)
        if status[name] == "paused":
            break
    return status


def _parent_built(name: str, budget: int, b: Build) -> bool:
    recipe, seed = parse_name(name)
    parent = RECIPES[recipe].init_from
    return parent is None or is_built(budget_name(parent, seed, budget), b)


def _claimed(path: Path) -> bool:
    """A claim whose process is gone (a crash, a killed stretch) does not count."""
    try:
        pid = int(path.read_text() or 0)
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _claim(path: Path) -> bool:
    if path.exists() and not _claimed(path):
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def source_of(rec: dict) -> str:
    """Which source probe is a record's own: the chest-X-ray set for recipes trained on it, else the corpus."""
    return "cxr" if any(st.get("data") == "cxr" for st in rec.get("stages", ())) else "fractal"


def budget_table(data: dict) -> list[dict]:
    """One row per (recipe, budget): seeds, images seen, wall time, devices, source and neutral probes."""
    rows: dict[tuple[str, int], dict] = {}
    for rec in data.get("budgets", {}).values():
        r = rows.setdefault((rec["recipe"], rec["budget"]), {"recipe": rec["recipe"], "budget": rec["budget"],
                                                             "seeds": [], "images_seen": rec["images_seen"],
                                                             "wall_time_s": [], "devices": set(), "probe": [],
                                                             "knn": [], "linear": []})
        r["seeds"].append(rec["train_seed"])
        r["wall_time_s"].append(rec["wall_time_s"])
        r["devices"].update(rec["devices"])
        r["probe"].append(rec["probe"].get(source_of(rec)))
        r["knn"].append(rec["neutral_probe"]["knn"])
        r["linear"].append(rec["neutral_probe"]["linear"])
    return [dict(r, devices=sorted(r["devices"])) for _, r in sorted(rows.items())]


def import_budgets(src: Path, out: Path, manifest: Path) -> list[str]:
    """Copy budget checkpoints built elsewhere (e.g. by ``benchmarks/minizoo_budget_gpu.py``): each file must
    match its record's sha256; 1x names are refused (the committed zoo is never replaced)."""
    src_manifest = src / "manifest.json"
    if not src_manifest.is_file():
        raise MedsslError(f"{src_manifest}: no manifest to import budget checkpoints from")
    done = []
    for name, rec in sorted(budget_records(src_manifest).items()):
        path = src / rec["file"]
        if rec.get("budget", 1) == 1 or parse_budget_name(name)[2] == 1:
            raise MedsslError(f"{name}: a 1x checkpoint; the committed zoo is never replaced by an import")
        if not path.is_file() or sha256_file(path) != rec["sha256"]:
            raise MedsslError(f"{path}: missing or not the checkpoint its record names (sha256 differs)")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / rec["file"], path.read_bytes())
        publish_budget(rec, manifest)
        done.append(name)
    return done
