"""Recipe pilots for the mini-zoo (issue 17 item 4): a recipe's settings against the small-scale SSL literature's.

    python benchmarks/minizoo_recipe_pilots.py --variant swav-2crop moco-sym [--seed 0] [--budget 1]
    python benchmarks/minizoo_recipe_pilots.py --table

Each variant is a committed recipe with a few stage settings changed (``VARIANTS``: what changes and the source
of the setting). It trains at the committed recipe's images seen (``--budget`` scales it like a budget build),
on one CPU thread, deterministically, and is probed exactly like a published checkpoint: float16 weights,
the source-task probe and the neutral probe. Results go to ``--results`` (JSON, one entry per variant, seed and
budget; written atomically, so runs in parallel processes each add their own). ``--table`` prints every
result beside the committed recipe at the same seed and budget. Nothing is published: adopting a variant is a
change to ``recipes.py`` and a rebuild, decided on these numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medssl_utils.models.minizoo import recipes as R  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "minizoo-recipe-pilots.json"

# name -> (recipe, stage fields to change, method params to change, why / source of the setting)
VARIANTS: dict[str, tuple[str, dict, dict, str]] = {
    "swav-2crop": ("swav", {}, {"n_low": 0, "frozen_steps": 60},
                   "2 full-size crops and no 16 px crops, prototypes frozen for one corpus epoch (62 steps): "
                   "the CIFAR setting of solo-learn's SwAV (2 x 32 px crops, prototypes frozen 2 epochs)"),
    "swav-2crop-p300": ("swav", {}, {"n_low": 0, "frozen_steps": 60, "prototypes": 300},
                        "swav-2crop with 300 prototypes (3 per corpus class; the CIFAR literature uses 3,000 "
                        "for 10 classes)"),
    "moco-sym": ("moco", {"lr": 0.3}, {"symmetric": True},
                 "symmetric loss (both views query and key, both enqueued) and lr 0.3, as SimCLR here and "
                 "MoCo-v2+ in solo-learn's CIFAR setting; key momentum 0.9, queue 1,024 as committed"),
    "moco-sym-ema": ("moco", {"lr": 0.3}, {"symmetric": True, "momentum": 0.99, "momentum_to_one": True},
                     "moco-sym with the literature's key-encoder momentum: 0.99, cosine to 1"),
    "byol-lr": ("byol", {"lr": 0.6}, {"momentum": 0.99},
                "BYOL with the literature's EMA start (0.99, cosine to 1) and a higher lr (0.6; solo-learn's "
                "CIFAR BYOL uses LARS at 1.0)"),
    "byol-wd": ("byol", {"weight_decay": 5e-4}, {},
                "BYOL with the weight decay every other recipe here uses (5e-4, as lightly's CIFAR-10 benchmark "
                "for every method); the committed recipe's 5e-5 was a guess"),
    "byol-lightly": ("byol", {"lr": 0.06, "weight_decay": 5e-4}, {"momentum": 0.99},
                     "lightly's CIFAR-10 benchmark setting: SGD lr 0.06 per 128 images, weight decay 5e-4, EMA "
                     "0.99 cosine to 1"),
    "byol-pred10": ("byol", {}, {"predictor_lr_mult": 10.0},
                    "BYOL with a predictor learning 10x faster than the encoder (SimSiam's and DirectPred's "
                    "finding that the predictor should adapt faster than the features it predicts)"),
    "byol-m09": ("byol", {}, {"momentum": 0.9},
                 "BYOL with a faster-following target at the start (EMA 0.9, cosine to 1): the BYOL paper's "
                 "ablation still learns at 0.9, and a short schedule leaves the target little time to move"),
    "byol-m09-pred10": ("byol", {}, {"momentum": 0.9, "predictor_lr_mult": 10.0},
                        "byol-m09 and byol-pred10 together"),
}


def variant_recipe(name: str, budget: int = 1) -> R.Recipe:
    """The committed recipe with the variant's changes, scaled to ``budget`` like a budget build."""
    from medssl_utils.models.minizoo.budget import budget_recipe

    if name not in VARIANTS:
        raise SystemExit(f"--variant {name!r}: expected one of {sorted(VARIANTS)}")
    key, fields, params, _ = VARIANTS[name]
    base = R.RECIPES[key]
    stages = tuple(dataclasses.replace(st, **fields, params=tuple(sorted({**dict(st.params), **params}.items())))
                   if st.method == key else st for st in base.stages)
    return budget_recipe(dataclasses.replace(base, stages=stages), budget)


def run(name: str, seed: int, budget: int, results: Path) -> dict:
    from medssl_utils.models.minizoo.arch import build_mini_resnet18_w16
    from medssl_utils.models.minizoo.neutral import neutral_probe
    from medssl_utils.models.minizoo.train import Sources, half_state, probe, probe_keys, train_recipe

    torch.set_num_threads(1)
    recipe = variant_recipe(name, budget)
    if recipe.stages == R.RECIPES[VARIANTS[name][0]].stages and budget == 1:
        raise SystemExit(f"--variant {name}: the committed recipe has these settings now (adopted); nothing to pilot")
    sources = Sources(ROOT / ".cache" / "medssl")
    for st in recipe.stages:
        sources.get(st.data)
    t0 = time.time()
    backbone, curves = train_recipe(recipe, seed, sources, progress=True)
    wall = time.time() - t0
    published = build_mini_resnet18_w16()
    published.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half_state(backbone).items()})
    entry = {"variant": name, "recipe": VARIANTS[name][0], "seed": seed, "budget": budget,
             "baseline": committed(VARIANTS[name][0], seed, budget),
             "why": VARIANTS[name][3], "stages": [dataclasses.asdict(st) for st in recipe.stages],
             "wall_s": round(wall, 1), "threads": 1,
             "loss_first_last": [[round(c[0], 4), round(c[-1], 4)] for c in curves],
             "probe": probe(published, sources, probe_keys(sources)),
             "neutral_probe": neutral_probe(published, sources)}
    _add(results, entry)
    print(json.dumps({k: entry[k] for k in ("variant", "seed", "budget", "wall_s", "probe", "neutral_probe")}),
          flush=True)
    return entry


def _add(results: Path, entry: dict) -> None:
    """Insert under a lock, so parallel pilot processes never lose each other's entries."""
    import fcntl

    from medssl_utils.storage import atomic_write_bytes

    results.parent.mkdir(parents=True, exist_ok=True)
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(results.resolve()).encode()).hexdigest()[:12]   # the same in every process
    with open(Path(tempfile.gettempdir()) / f"medssl-pilots-{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(results.read_text()) if results.is_file() else {"runs": []}
        data["runs"] = [r for r in data["runs"] if (r["variant"], r["seed"], r["budget"])
                        != (entry["variant"], entry["seed"], entry["budget"])] + [entry]
        atomic_write_bytes(results, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def committed(recipe: str, seed: int, budget: int) -> dict | None:
    """The committed checkpoint's probes at the same seed and budget (None when it was not built)."""
    from medssl_utils.models.minizoo import read_manifest
    from medssl_utils.models.minizoo.budget import budget_name

    m = read_manifest()
    if budget == 1:
        name = R.model_name(recipe, seed)
        rec, neutral = m["models"].get(name), m["neutral_probe"]["models"].get(name)
        return rec and {"probe": rec["probe"], "neutral_probe": neutral}
    rec = m.get("budgets", {}).get(budget_name(recipe, seed, budget))
    return rec and {"probe": rec["probe"], "neutral_probe": rec["neutral_probe"]}


def table(results: Path) -> None:
    runs = json.loads(results.read_text())["runs"] if results.is_file() else []
    print(f"{'variant':18} {'seed':>4} {'budget':>6} {'source %':>15} {'neutral kNN %':>15} {'neutral lin %':>15} "
          f"{'wall s':>7}   (the recipe committed when the pilot ran -> variant)")
    for r in sorted(runs, key=lambda r: (r["recipe"], r["variant"], r["budget"], r["seed"])):
        c = r.get("baseline")

        def pair(get):
            return f"{100 * get(c):5.1f} -> {100 * get(r):5.1f}" if c else f"   -- -> {100 * get(r):5.1f}"
        print(f"{r['variant']:18} {r['seed']:>4} {r['budget']:>6} {pair(lambda d: d['probe']['fractal']):>15} "
              f"{pair(lambda d: d['neutral_probe']['knn']):>15} {pair(lambda d: d['neutral_probe']['linear']):>15} "
              f"{r['wall_s']:>7.0f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", nargs="+", default=[], help=f"one or more of {sorted(VARIANTS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=1)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--table", action="store_true", help="print the results beside the committed recipes")
    a = ap.parse_args(argv)
    for name in a.variant:
        run(name, a.seed, a.budget, Path(a.results))
    if a.table or not a.variant:
        table(Path(a.results))


if __name__ == "__main__":
    main()
