"""The dress rehearsal of the real path (``medssl rehearse``): everything a user with the datasets, the
checkpoints and a GPU runs, on stand-ins that this machine can make.

* the eight datasets are fabricated in their publishers' layouts (``publishers``: the same writers the loader
  tests use), with enough images per class for every protocol;
* the thirteen checkpoints are written in their original file layouts with random weights at the real
  architectures (``checkpoints``), then converted by ``models.converters.convert`` into a weights folder. The
  registry's sha256 of each original cannot match a random file, so conversion skips that one check and the
  weights manifest records the files as unverified;
* every notebook runs under the ``paper`` profile with a quick budget (``QUICK``) and the book is built.

A marker file in ``data_root`` (``config.REHEARSAL_MARKER``) makes every page say that its numbers come from
random weights and fabricated images, whoever runs the notebooks on that folder.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

from ..config import REHEARSAL_MARKER, project_root
from ..storage import atomic_write_text

# Per-run budget: small enough for a 2-core CPU, large enough that every protocol and analysis runs. Finetuning
# takes batches of 8 (a legal switch, shown on the deviations page) because 4 steps at the paper's batch of
# 64 cost about 60 s per ResNet-50 unit here.
QUICK = {"n_episodes": 20, "finetune_max_steps": 4, "finetune_eval_every": 2, "dip_steps": 10,
         "saliency_image_size": 32, "invariance_images": 4, "options": {"finetune": {"batch_size": 8}}}
# The writers' ``n_per_class`` for each dataset: the smallest count (measured with the patient-level splits)
# that leaves every class 37 non-test images, two more than a few-shot episode takes (20 shots + 15
# queries). Extraction dominates the rehearsal (13 models x every image at 224 px), so every image counts:
# 1,461 images in all, where 60 per writer made 2,352.
IMAGES_PER_CLASS = {"chexpert": 35, "chestx14": 48, "montgomery": 46, "shenzhen": 46, "bach": 46, "eyepacs": 20,
                    "ichallenge_amd": 46, "ichallenge_pm": 46}
CI_MODELS = ("supervised_r18", "moco_cxr_r18")
CI_DATASETS = ("chexpert", "shenzhen")


def fabricate_data(root: Path, datasets: Iterable[str] | None = None, n_per_class: int | None = None) -> dict:
    """The datasets in their publishers' layouts under ``root`` (a ``data_root``), and the rehearsal marker.
    ``n_per_class``: one count for every writer instead of ``IMAGES_PER_CLASS``."""
    from .publishers import WRITERS

    names = list(datasets or WRITERS)
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        from ..errors import MedsslError

        raise MedsslError(f"rehearsal: no fabricated layout for dataset(s) {unknown}; expected some of {sorted(WRITERS)}")
    root.mkdir(parents=True, exist_ok=True)
    counts = {n: int(n_per_class or IMAGES_PER_CLASS[n]) for n in names}
    truth = {n: WRITERS[n](root, counts[n]) for n in names}
    _fabricate_imagenet_image(root)
    atomic_write_text(root / REHEARSAL_MARKER, json.dumps({"what": "fabricated images in the publishers' layouts",
                                                           "datasets": names, "n_per_class": counts}))
    return truth


def _fabricate_imagenet_image(root: Path) -> None:
    """One image under ``data_root/imagenet/``: the paper analysed an ImageNet image too (the last column of
    Tables A4-A7), and a real run takes it from there."""
    import numpy as np
    from PIL import Image

    from ..data.source_images import IMAGENET_FOLDER
    from ..storage import atomic_path

    folder = root / IMAGENET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with atomic_path(folder / "fabricated_goldfish.png") as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def fabricate_weights(weights_dir: Path, models: Iterable[str]) -> list[Path]:
    """Random originals in each model's own layout, converted into ``weights_dir`` (one seed per model)."""
    from ..models.converters import convert, original_path
    from ..models.registry import get_spec
    from .checkpoints import write_checkpoint

    weights_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k, name in enumerate(models):
        spec = get_spec(name)
        source = original_path(spec, weights_dir)
        if not source.is_file():
            write_checkpoint(spec.layout, source, spec.arch, seed=1000 + k)
        # a random file cannot have the published sha256: that check alone is skipped
        unverified = dataclasses.replace(spec, sha256=None,
                                         extra={k_: v for k_, v in spec.extra.items() if k_ != "sha256_prefix"})
        out.append(convert(unverified, source, weights_dir))
    atomic_write_text(weights_dir / REHEARSAL_MARKER, json.dumps({"what": "random weights in the original layouts",
                                                                  "models": list(models)}))
    return out


def parameters(out: Path, models: Iterable[str], datasets: Iterable[str], budget: dict | None = None) -> dict:
    models, datasets = list(models), list(datasets)
    return {"data_root": str(out / "data"), "weights_dir": str(out / "weights"), "cache_dir": str(out / "cache"),
            "results_dir": str(out / "results"), "models": models, "datasets": datasets,
            "analysis_models": models, "finetune_models": models, **(budget or QUICK)}


def build_site(out: Path, generated: Path) -> Path:
    """A copy of the book's frame (config, table of contents, prose pages) around the rehearsal's notebooks."""
    root = project_root()
    site = out / "site"
    (site / "book").mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, site / name)
    for page in (root / "book").glob("*.md"):
        shutil.copy2(page, site / "book" / page.name)
    target = site / "book" / "generated"
    if target.resolve() != generated.resolve():
        shutil.copytree(generated, target, dirs_exist_ok=True)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "-W", "-n", "--keep-going", "-q"],
                   check=True, cwd=site)
    return site / "_build" / "html" / "index.html"


def rehearse(out: str | Path, *, models: Iterable[str] | None = None, datasets: Iterable[str] | None = None,
             n_per_class: int | None = None, budget: dict | None = None, notebooks: Iterable[str] | None = None,
             book: bool = True, log=print) -> dict:
    """Fabricate, convert, run the notebooks under ``paper`` and build the book in ``out``; return the timings."""
    from ..config import load_profile, resolve
    from ..notebooks import run_notebooks

    out = Path(out).resolve()
    paper = load_profile("paper")
    models = list(models or paper["models"])
    datasets = list(datasets or paper["datasets"])
    times: dict[str, float] = {}
    t = time.perf_counter()
    fabricate_data(out / "data", datasets, n_per_class)
    times["fabricate data"] = time.perf_counter() - t
    t = time.perf_counter()
    fabricate_weights(out / "weights", models)
    times["write and convert weights"] = time.perf_counter() - t
    params = parameters(out, models, datasets, budget)
    resolve("paper", **params)
    generated = out / "site" / "book" / "generated"
    t = time.perf_counter()
    run_notebooks("paper", generated, names=notebooks, params=params, log=log)
    times["notebooks"] = time.perf_counter() - t
    if book:
        t = time.perf_counter()
        index = build_site(out, generated)
        times["book"] = time.perf_counter() - t
        log(f"rehearsal book: {index}")
    for what, sec in times.items():
        log(f"{what}: {sec:.0f} s")
    return times
