"""Training, probing and publishing the mini-zoo: any checkpoint can be rebuilt from scratch, deterministically.

``rebuild(name, out_dir)`` retrains one model (``mini-<recipe>-s<seed>``) and writes ``out_dir/<name>.pt``
(a float16 headless state dict, loadable with ``torch.load(weights_only=True)``). It returns the model's
manifest record: hash, recipe, data, steps, batch size, wall time, a ~50-point loss curve and linear-probe
accuracies. The same seed gives the same weights on the same machine with the same thread count (recorded).

CLI: ``python -m medssl_utils.models.minizoo.train --all`` (every model, in the build order; models already
in the manifest with a matching file are skipped unless ``--force``) or ``--name mini-simclr-s0``;
``--baselines`` probes the random-init models. Records go into ``manifest.json`` beside the weights.
``--budget B`` builds the budget axis (``budget.py``: resumable, in stretches; records under ``budgets``) and
``--neutral-probe`` probes the committed models on classes no recipe trained on (``neutral.py``).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ...storage import atomic_path, atomic_write_bytes, atomic_write_text, sha256_file
from .arch import ARCH_NAME, INPUT_SIZE, MiniResNet, build_mini_resnet18_w16
from .corpus import CORPUS_VERSION, FractalCorpus, make_corpus
from .recipes import BUILD_ORDER, RECIPES, SEEDS, Recipe, Stage, build_learner, model_name, normalise, \
    parse_name
from .resume import DEFAULT_STATE_DIR, run_stage

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
MANIFEST = PACKAGE_DIR / "manifest.json"

CORPUS_SEED = 0           # the FractalDB-mini corpus every natural-image recipe uses
CXR_SOURCE = "medsynth-cxr-source"
CXR_SEED = 0              # generator seed of the chest-X-ray source set
CXR_HELDOUT = 0.2         # fraction of each cxr class kept out of pretraining (the probe's test split)
PROBE_C = 1.0             # inverse L2 strength of the probe's logistic regression (one value for all models)
PROBE_TRAIN_PER_CLASS = {"fractal": 40, "cxr": 200}   # probe training images per class (a fixed subset of the
                                                      # pretraining split: keeps each probe under a minute here)
LOSS_POINTS = 50
RANDOM_SEEDS = (0, 1, 2)


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------

def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, S, S) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def stratified_heldout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask: a seeded ``fraction`` of every class (at least one image per class)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        mask[rng.choice(idx, k, replace=False)] = True
    return mask


class Sources:
    """The pretraining sets, built once per process: ``get(key)`` -> (train images, labels, heldout images,
    heldout labels, n_classes, description)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._cache: dict[str, tuple] = {}

    def get(self, key: str) -> tuple:
        if key not in self._cache:
            self._cache[key] = getattr(self, f"_{key}")()
        return self._cache[key]

    def _fractal(self) -> tuple:
        c = self._corpus()
        xtr, ytr = c.split(False)
        xte, yte = c.split(True)
        desc = {"name": "FractalDB-mini", "fingerprint": c.fingerprint, "seed": CORPUS_SEED,
                "n_train": int(len(ytr)), "n_heldout": int(len(yte)), "n_classes": c.n_classes}
        return to_tensor(xtr), torch.from_numpy(ytr), to_tensor(xte), torch.from_numpy(yte), c.n_classes, desc

    def _corpus(self):
        """The corpus, from an .npz in ``cache_dir`` when one exists (generation takes 10-90 s on a busy box)."""
        if self.cache_dir is None:
            return make_corpus(CORPUS_SEED)
        path = Path(self.cache_dir) / "minizoo" / f"fractaldb-mini-v{CORPUS_VERSION}-seed{CORPUS_SEED}.npz"
        if path.is_file():
            z = np.load(path)
            return FractalCorpus(images=z["images"], labels=z["labels"], heldout=z["heldout"], seed=CORPUS_SEED,
                                 n_classes=int(z["n_classes"]))
        c = make_corpus(CORPUS_SEED)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=c.images, labels=c.labels, heldout=c.heldout, n_classes=c.n_classes)
        return c

    def _neutral(self) -> tuple:
        """The neutral probe's corpus (new classes, never pretrained on): ``neutral.py``."""
        from .neutral import neutral_set

        return neutral_set()

    def _cxr(self) -> tuple:
        from ...data import load_dataset

        ds = load_dataset(CXR_SOURCE, cache_dir=self.cache_dir, image_size=INPUT_SIZE, seed=CXR_SEED)
        images = getattr(ds, "images", None)
        if images is None:
            images = np.stack([np.asarray(ds.image(i).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE)))
                               for i in range(len(ds))])
        if images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"{CXR_SOURCE}: expected images of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), "
                             f"got {images.shape}")
        held = stratified_heldout(ds.labels, CXR_HELDOUT, CXR_SEED)
        desc = {"name": CXR_SOURCE, "fingerprint": ds.fingerprint, "seed": CXR_SEED, "n_train": int((~held).sum()),
                "n_heldout": int(held.sum()), "n_classes": len(ds.classes), "heldout_fraction": CXR_HELDOUT}
        return (to_tensor(images[~held]), torch.from_numpy(ds.labels[~held]), to_tensor(images[held]),
                torch.from_numpy(ds.labels[held]), len(ds.classes), desc)


# ----------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------

def train_stage(learner: nn.Module, stage: Stage, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
                *, steps: int | None = None, batch_size: int | None = None,
                progress: Callable[[int, float], None] | None = None) -> list[float]:
    """SGD with warmup + cosine over ``stage.steps`` (or ``steps``); epochs are seeded permutations. The loop
    is ``resume.run_stage``, which budget builds also use to stop and resume."""
    return run_stage(learner, stage, images, labels, gen, steps=steps, batch_size=batch_size, progress=progress)[0]


def train_recipe(recipe: Recipe, seed: int, sources: Sources, *, init_state: dict | None = None,
                 steps: int | None = None, batch_size: int | None = None, progress: bool = False
                 ) -> tuple[MiniResNet, list[list[float]]]:
    """Run every stage of ``recipe`` with ``seed``; returns the backbone and each stage's per-step losses."""
    torch.manual_seed(seed)
    backbone = build_mini_resnet18_w16()
    if init_state is not None:
        backbone.load_state_dict(init_state)
    backbone = backbone.to(memory_format=torch.channels_last)
    curves = []
    for k, stage in enumerate(recipe.stages):
        xtr, ytr, _, _, n_classes, _ = sources.get(stage.data)
        torch.manual_seed(seed * 1000 + k)
        learner = build_learner(stage, backbone, n_classes).to(memory_format=torch.channels_last)
        gen = torch.Generator().manual_seed(seed * 1000 + k)
        n = stage.steps if steps is None else steps
        t0 = time.time()

        def report(step: int, loss: float) -> None:
            if progress and (step % 50 == 0 or step == n - 1):
                print(f"  [{recipe.key} s{seed} stage {k} {stage.method}/{stage.data}] step {step + 1}/{n} "
                      f"loss {loss:.4f} ({time.time() - t0:.0f}s)", flush=True)

        curves.append(train_stage(learner, stage, xtr, ytr, gen, steps=steps, batch_size=batch_size,
                                  progress=report))
    return backbone.eval(), curves


def half_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The published form: float16 floating tensors (BN counters stay integer), contiguous."""
    return {k: (v.half() if v.is_floating_point() else v).contiguous().clone() for k, v in module.state_dict().items()}


def checkpoint_bytes(module: nn.Module) -> bytes:
    """The .pt bytes, serialised in memory: torch.save to a path embeds the (random temp) file name in the
    archive, which would make identical weights hash differently."""
    import io

    buf = io.BytesIO()
    torch.save(half_state(module), buf)
    return buf.getvalue()


def load_half(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def downsample(curve: list[float], points: int = LOSS_POINTS) -> list[list[float]]:
    """[[step, mean loss of the window]] with about ``points`` windows."""
    if not curve:
        return []
    edges = np.unique(np.linspace(0, len(curve), min(points, len(curve)) + 1).astype(int))
    return [[int(b), round(float(np.mean(curve[a:b])), 5)] for a, b in zip(edges[:-1], edges[1:])]


# ----------------------------------------------------------------------------------------------------------
# linear probe
# ----------------------------------------------------------------------------------------------------------

@torch.no_grad()
def extract(module: nn.Module, images: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Pooled features of [0, 1] images with the model's registered preprocessing (ImageNet statistics)."""
    module.eval()
    return np.concatenate([module(normalise(images[i:i + batch])).numpy() for i in range(0, len(images), batch)])


def linear_probe(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray,
                 C: float = PROBE_C) -> float:
    """Held-out accuracy of a standardised multinomial logistic regression (one fixed C for every model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(f_train)
    clf = LogisticRegression(C=C, max_iter=300, tol=1e-3)
    clf.fit(sc.transform(f_train), y_train)
    return float((clf.predict(sc.transform(f_test)) == y_test).mean())


def probe_subset(labels: np.ndarray, per_class: int) -> np.ndarray:
    """The first ``per_class`` indices of every class (fixed, so every model is probed on the same images)."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])


def probe(module: nn.Module, sources: Sources, keys: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for key in keys:
        xtr, ytr, xte, yte, _, _ = sources.get(key)
        sub = torch.from_numpy(probe_subset(ytr.numpy(), PROBE_TRAIN_PER_CLASS[key]))
        out[key] = round(linear_probe(extract(module, xtr[sub]), ytr[sub].numpy(), extract(module, xte),
                                      yte.numpy()), 4)
    return out


def probe_keys(sources: Sources) -> tuple[str, ...]:
    """Every model is probed on the corpus and on the chest-X-ray source's labels."""
    return ("fractal", "cxr")


# ----------------------------------------------------------------------------------------------------------
# rebuild + manifest
# ----------------------------------------------------------------------------------------------------------

def rebuild(name: str, out_dir: str | Path, *, progress: bool = True, threads: int = 1,
            sources: Sources | None = None, cache_dir: str | Path | None = None,
            steps: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """Retrain ``name`` from scratch into ``out_dir/<name>.pt`` and return its manifest record.

    A recipe with ``init_from`` starts from the same-seed published checkpoint of that recipe, read from
    ``out_dir`` (rebuilt there first if missing), so a chain rebuilds from nothing but code. ``steps`` and
    ``batch_size`` override every stage's (tests only; the record then says so in ``overrides``).
    """
    recipe_key, seed = parse_name(name)
    recipe = RECIPES[recipe_key]
    out_dir = Path(out_dir)
    torch.set_num_threads(threads)
    sources = sources or Sources(cache_dir)
    init_state, init_rec = None, None
    if recipe.init_from:
        dep = model_name(recipe.init_from, seed)
        dep_path = out_dir / f"{dep}.pt"
        if not dep_path.is_file():
            rebuild(dep, out_dir, progress=progress, threads=threads, sources=sources, steps=steps,
                    batch_size=batch_size)
        init_state = load_half(dep_path)
        init_rec = {"name": dep, "sha256": sha256_file(dep_path)}
    for st in recipe.stages:  # build the data before the clock starts
        sources.get(st.data)
    t0 = time.time()
    backbone, curves = train_recipe(recipe, seed, sources, init_state=init_state, progress=progress,
                                    steps=steps, batch_size=batch_size)
    wall = time.time() - t0
    path = out_dir / f"{name}.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, checkpoint_bytes(backbone))
    # probe the published (float16) weights, exactly what load_backbone will give
    published = build_mini_resnet18_w16()
    published.load_state_dict(load_half(path))
    t1 = time.time()
    acc = probe(published, sources, probe_keys(sources))
    record = make_record(name, recipe_key, recipe, seed, path, sources, curves, init_rec, wall, time.time() - t1,
                         threads, acc)
    if steps is not None or batch_size is not None:
        record["overrides"] = {"steps": steps, "batch_size": batch_size}
    if progress:
        print(f"{name}: {wall:.0f}s training, probe {acc}", flush=True)
    return record


def make_record(name: str, recipe_key: str, recipe: Recipe, seed: int, path: Path, sources: Sources,
                curves: list[list[float]], init_rec: dict | None, wall: float, probe_time: float, threads: int,
                acc: dict[str, float]) -> dict[str, Any]:
    """The manifest record of a published checkpoint (``recipe`` as trained: a budget's stages are scaled)."""
    return {
        "name": name, "recipe": recipe_key, "title": f"{recipe.title} (seed {seed})", "family": recipe.family,
        "method": recipe.method, "train_seed": seed, "arch": ARCH_NAME, "file": path.name,
        "sha256": sha256_file(path), "bytes": path.stat().st_size,
        "data": {st.data: sources.get(st.data)[5] for st in recipe.stages},
        "stages": [{"method": st.method, "data": st.data, "steps": st.steps, "batch_size": st.batch_size,
                    "lr": st.lr, "warmup": st.warmup, "weight_decay": st.weight_decay, "aug": st.aug, "bf16": st.bf16,
                    "params": dict(st.params)} for st in recipe.stages],
        "steps": sum(st.steps for st in recipe.stages),
        "batch_size": [st.batch_size for st in recipe.stages],
        "init_from": init_rec, "wall_time_s": round(wall, 1), "probe_time_s": round(probe_time, 1),
        "threads": threads, "torch": torch.__version__,
        "loss_curve": [downsample(c) for c in curves],
        "loss_first_last": [[round(float(np.mean(c[:10])), 4), round(float(np.mean(c[-10:])), 4)] for c in curves],
        "probe": acc, "notes": recipe.notes,
    }


def random_baseline(seed: int, sources: Sources) -> dict[str, Any]:
    """Probe of the registered random-init model: initialised exactly as ``load_backbone`` does."""
    from ..checkpoints import load_canonical
    from ..registry import get_spec

    spec = get_spec(f"mini-random-s{seed}")
    module = build_mini_resnet18_w16()
    _, h = load_canonical(spec, None, module)
    return {"name": spec.name, "init_seed": seed, "weights_hash": h, "probe": probe(module, sources,
                                                                                    probe_keys(sources))}


@contextmanager
def manifest_lock(path: Path = MANIFEST) -> Iterator[dict]:
    """Read-modify-write of the manifest under an exclusive lock (several builders may run at once)."""
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    lock = Path(tempfile.gettempdir()) / f"medssl-minizoo-manifest-{tag}.lock"   # not in the package
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data.setdefault("models", {})
        data.setdefault("random_baseline", {})
        yield data
        data["summary"] = summarise(data)
        data["about"] = MANIFEST_ABOUT
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


MANIFEST_ABOUT = {
    "what": "the mini-zoo's published checkpoints (float16 headless state dicts) and how each was made",
    "probe": f"linear probe on frozen pooled features: StandardScaler + multinomial LogisticRegression "
             f"(C={PROBE_C}); 'fractal' = fit on the first {PROBE_TRAIN_PER_CLASS['fractal']} images per class "
             f"of the corpus train split, test on the held-out split (20/class, never used in pretraining); "
             f"'cxr' = fit on the first {PROBE_TRAIN_PER_CLASS['cxr']} images per class of the "
             f"{1 - CXR_HELDOUT:.0%} of {CXR_SOURCE} used for pretraining, test on the held-out "
             f"{CXR_HELDOUT:.0%} (stratified, seed {CXR_SEED}).",
    "acceptance": "per recipe: margin = mean probe accuracy over seeds - mean over the random-init seeds, on "
                  "the recipe's source task (fractal for natural-image recipes, cxr for domain recipes); "
                  "passes when margin > recipe seed SD + random seed SD.",
    "rebuild": "python -m medssl_utils.models.minizoo.train --name <model> --out DIR",
}


def summarise(data: dict) -> dict:
    """Per recipe and task: mean, SD and seeds of the probe; margin over random init; pass/fail."""
    rand = {}
    for r in data.get("random_baseline", {}).values():
        for task, acc in r["probe"].items():
            rand.setdefault(task, []).append(acc)
    out = {"random": {t: _stats(v) for t, v in rand.items()}}
    by_recipe: dict[str, dict[str, list[float]]] = {}
    for rec in data.get("models", {}).values():
        for task, acc in rec["probe"].items():
            by_recipe.setdefault(rec["recipe"], {}).setdefault(task, []).append(acc)
    for key, tasks in sorted(by_recipe.items()):
        source = "cxr" if any(st.data == "cxr" for st in RECIPES[key].stages) else "fractal"
        row = {"source_task": source}
        for task, accs in tasks.items():
            s = _stats(accs)
            if task in rand:
                r = _stats(rand[task])
                s["margin"] = round(s["mean"] - r["mean"], 4)
                s["spread"] = round(s["sd"] + r["sd"], 4)
                s["beats_random"] = bool(s["margin"] > s["spread"])
            row[task] = s
        row["passes"] = bool(row.get(source, {}).get("beats_random", False)) and len(tasks[source]) >= 2 \
            if source in tasks else False
        out[key] = row
    return out


def _stats(v: list[float]) -> dict:
    a = np.asarray(v, float)
    return {"mean": round(float(a.mean()), 4), "sd": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 4),
            "n": int(len(a)), "values": [round(float(x), 4) for x in a]}


def publish(record: dict, manifest: Path = MANIFEST) -> None:
    with manifest_lock(manifest) as data:
        data["models"][record["name"]] = record


def supersede(names: list[str], why: str, out_dir: Path, manifest: Path = MANIFEST) -> list[str]:
    """Retire published 1x models and their budget checkpoints before a recipe change: each record (with its
    neutral probe) moves to ``superseded`` under '<name> (<steps> steps, <recipe settings>)', and the weight
    files go, so the next build of those names starts from step 0 with the new recipe."""
    from .budget import parse_budget_name

    moved = []
    with manifest_lock(manifest) as data:
        neutral = data.get("neutral_probe", {}).get("models", {})
        old = {n: data["models"][n] for n in names if n in data["models"]}
        old.update({n: r for n, r in data.get("budgets", {}).items()
                    if parse_budget_name(n)[:2] in {parse_name(m) for m in names}})
        for name, rec in sorted(old.items()):
            params = "; ".join(f"{st['method']} lr {st['lr']} " + ", ".join(f"{k} {v}" for k, v in
                                                                           sorted(st.get("params", {}).items()))
                               for st in rec["stages"])
            tag = f"{name} ({rec['steps']} steps; {params})"
            data.setdefault("superseded", {})[tag] = {
                "probe": rec["probe"], "neutral_probe": rec.get("neutral_probe") or
                {k: v for k, v in neutral.get(name, {}).items() if k != "weights"},
                "sha256": rec["sha256"], "wall_time_s": rec["wall_time_s"], "why": why}
            data["models"].pop(name, None)
            data.get("budgets", {}).pop(name, None)
            neutral.pop(name, None)
            (out_dir / rec["file"]).unlink(missing_ok=True)
            moved.append(name)
    return moved


def is_published(name: str, out_dir: Path, manifest: Path = MANIFEST) -> bool:
    if not manifest.is_file():
        return False
    rec = json.loads(manifest.read_text()).get("models", {}).get(name)
    path = out_dir / f"{name}.pt"
    return bool(rec) and path.is_file() and sha256_file(path) == rec["sha256"]


def all_names() -> list[str]:
    return [model_name(r, s) for s in SEEDS for r in BUILD_ORDER]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--all", action="store_true", help="build every model in the build order")
    g.add_argument("--name", nargs="+", help="model name(s), e.g. mini-simclr-s0 (with --budget: the 1x name)")
    g.add_argument("--baselines", action="store_true", help="probe the random-init models into the manifest")
    g.add_argument("--repack", action="store_true", help="re-serialise published weights byte-stably")
    ap.add_argument("--worker", action="store_true",
                    help="like --all (with --budget and --name: those models), but several workers can share the "
                         "list (each claims a model in OUT/.claims)")
    ap.add_argument("--out", default=str(WEIGHTS_DIR), help="weights directory (default: the package's)")
    ap.add_argument("--manifest", default=None, help="manifest path (default: manifest.json beside --out's "
                                                      "parent when --out is the package dir, else OUT/manifest.json)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="retrain even if the manifest has the model")
    ap.add_argument("--supersede", metavar="WHY", default=None,
                    help="with --name: retire those models and their budget checkpoints into the manifest's "
                         "'superseded' (with WHY) and delete their weights, before a recipe change is rebuilt")
    ap.add_argument("--cache-dir", default=None, help="cache dir for the MedSynth chest-X-ray source")
    b = ap.add_argument_group("budget builds (issue 17): resumable, in stretches")
    b.add_argument("--budget", type=int, default=None, help="multiple of today's images seen (1, 4, 16); with "
                   "--all, --name or --worker, builds mini-<recipe>-b<B>-s<seed> into the manifest's 'budgets'")
    b.add_argument("--continue", dest="resume", action="store_true",
                   help="resume a saved stretch (without it an existing state file is an error)")
    b.add_argument("--stretch-minutes", type=float, default=None, help="save the state and stop after M minutes")
    b.add_argument("--stretch-steps", type=int, default=None, help="save the state and stop after N steps")
    b.add_argument("--save-every", type=int, default=200, help="steps between state saves (default 200)")
    b.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help=f"state files (default {DEFAULT_STATE_DIR})")
    b.add_argument("--device", default="cpu", help="cpu (deterministic) or cuda")
    b.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)       # tests: steps per stage at 1x
    b.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)  # tests
    b.add_argument("--import-budgets", default=None, metavar="DIR",
                   help="copy budget checkpoints and records built elsewhere (DIR/manifest.json, DIR/*.pt) in")
    n = ap.add_argument_group("neutral probe")
    n.add_argument("--neutral-probe", action="store_true", help="neutral probe of the committed 1x models and "
                   "random init (or --name ...) into the manifest's 'neutral_probe'")
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = _parser()
    a = ap.parse_args(argv)
    if not (a.all or a.name or a.baselines or a.repack or a.worker or a.neutral_probe or a.import_budgets):
        ap.error("one of the arguments --all --name --baselines --repack --worker --neutral-probe --import-budgets "
                 "is required")
    if (a.neutral_probe or a.budget is not None) and (a.baselines or a.repack):
        ap.error("--budget and --neutral-probe do not combine with --baselines or --repack")
    if a.worker and (a.all or a.baselines or a.repack or (a.name and a.budget is None)):
        ap.error("--worker builds every model (or, with --budget, the --name models); it does not combine with "
                 "--all, --baselines, --repack, or --name without --budget")
    out = Path(a.out)
    manifest = Path(a.manifest) if a.manifest else (MANIFEST if out.resolve() == WEIGHTS_DIR else out / "manifest.json")
    # budget builds and the neutral probe cache the corpus (10-90 s to generate) like the profiles do
    sources = Sources(a.cache_dir or (".cache/medssl" if a.budget or a.neutral_probe or a.import_budgets else None))
    torch.set_num_threads(a.threads)
    if a.supersede:
        if not a.name:
            ap.error("--supersede needs --name")
        return print(f"superseded {supersede(a.name, a.supersede, out, manifest)}")
    if a.import_budgets:
        from .budget import import_budgets

        return print(f"imported {import_budgets(Path(a.import_budgets), out, manifest)}")
    if a.neutral_probe:
        return _neutral(a.name, out, manifest, sources)
    if a.budget is not None:
        return _budget(a, out, manifest, sources)
    if a.baselines:
        for s in RANDOM_SEEDS:
            rec = random_baseline(s, sources)
            print(rec, flush=True)
            with manifest_lock(manifest) as data:
                data["random_baseline"][rec["name"]] = rec
        return
    if a.repack:
        return repack(out, manifest)
    if a.worker:
        return _work(out, manifest, sources, a.threads)
    names = all_names() if a.all else a.name
    for name in names:
        if not a.force and is_published(name, out, manifest):
            print(f"{name}: already published, skipped", flush=True)
            continue
        publish(rebuild(name, out, threads=a.threads, sources=sources), manifest)


def _neutral(names: list[str] | None, out: Path, manifest: Path, sources: Sources) -> None:
    from .neutral import neutral_table, probe_published

    probe_published(names, out, manifest, sources)
    print(f"{'recipe':10} {'seeds':6} {'source %':>20} {'neutral kNN %':>20} {'neutral linear %':>20}")
    for r in neutral_table(json.loads(manifest.read_text())):
        cells = [" / ".join(f"{100 * v:.1f}" for v in r[k]) for k in ("source", "knn", "linear")]
        print(f"{r['recipe']:10} {len(r['seeds']):<6} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20}")


def _budget(a: argparse.Namespace, out: Path, manifest: Path, sources: Sources) -> None:
    """``--budget B``: continue (or start) the budget build, for one stretch."""
    from . import budget as B
    from .resume import Stop, stop_on_signals

    if a.device.startswith("cuda"):     # same GPU, same result; the CPU path never reads these
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    b = B.Build(out=out, manifest=manifest, sources=sources, state_dir=Path(a.state_dir), save_every=a.save_every,
                threads=a.threads, device=a.device, resume=a.resume, steps=a.steps, batch_size=a.batch_size)
    deadline = None if a.stretch_minutes is None else time.time() + 60 * a.stretch_minutes
    with stop_on_signals(Stop(a.stretch_steps, deadline)) as stop:
        names = a.name or all_names()
        status = (B.work if a.worker else B.build_all)(names, a.budget, b, stop)
    left = [n for n in names if not B.is_built(B.budget_name(*parse_name(n), a.budget), b)]
    print(f"budget {a.budget}: " + ", ".join(f"{k} {v}" for k, v in status.items()) +
          (f"; {len(left)} model(s) still to build" if left else "; done"), flush=True)


def repack(out: Path, manifest: Path = MANIFEST) -> None:
    """Re-serialise published checkpoints with ``checkpoint_bytes`` (same tensors, byte-stable archive) and
    update their hashes, including the ``init_from`` hashes that point at them."""
    import io

    with manifest_lock(manifest) as data:
        new = {}
        for name, rec in data["models"].items():
            path = out / rec["file"]
            state = torch.load(path, map_location="cpu", weights_only=True)
            buf = io.BytesIO()
            torch.save(state, buf)
            atomic_write_bytes(path, buf.getvalue())
            new[name] = sha256_file(path)
            rec["sha256"], rec["bytes"] = new[name], path.stat().st_size
        for rec in data["models"].values():
            if rec.get("init_from") and rec["init_from"]["name"] in new:
                rec["init_from"]["sha256"] = new[rec["init_from"]["name"]]


def _work(out: Path, manifest: Path, sources: Sources, threads: int) -> None:
    """Claim-and-build loop: a model is taken once its init dependency is published; claims are O_EXCL files."""
    import os

    claims = out / ".claims"
    claims.mkdir(parents=True, exist_ok=True)
    while True:
        todo = [n for n in all_names() if not is_published(n, out, manifest)]
        if not todo:
            return
        took = False
        for name in todo:
            dep = RECIPES[parse_name(name)[0]].init_from
            if dep and not is_published(model_name(dep, parse_name(name)[1]), out, manifest):
                continue
            try:
                os.close(os.open(claims / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            publish(rebuild(name, out, threads=threads, sources=sources), manifest)
            took = True
            break
        if not took:
            if all((claims / n).exists() for n in todo):
                return          # everything left is being built by another worker
            time.sleep(20)      # waiting for a dependency


if __name__ == "__main__":
    main()
