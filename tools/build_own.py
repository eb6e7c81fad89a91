"""Writes notebooks/own_model_dataset.ipynb (no outputs): evaluate your own model or dataset (issue 16)."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Evaluate your own model or dataset

Two YAML files bring a backbone or a folder of images the package has never heard of into every page of this
book, without touching its code: name them with the parameters `extra_models` and `extra_datasets` (in a
profile, or `-p` on the command line) and put the new names in `models` / `datasets`. `config` checks every
field first, with one line naming the file, the entry and the field; from then on the new entries are
registry entries like the built-in ones: the same feature cache (keyed by the weights' hash and the images'
fingerprint), splits, few-shot episodes, protocols, analyses, tables and paired tests.

**A model** is a torchvision classification architecture (`resnet18`, `resnet50`, `densenet121`, ...), a
registered one (`mini_resnet18_w16`) or, with timm installed, `timm/<name>`; its checkpoint is read with
`weights_only` (no pickled code runs), converted from its layout (`torchvision`, `plain`, `timm`, one of the
paper's layouts such as `moco`, and optionally `strip_prefix` for `module.` / `backbone.` / `encoder_q.`
keys) and key-checked against the architecture. **A dataset** is an ImageFolder tree (`root/<class>/<image>`) or
a CSV of `path,label` (column names configurable, optional split and patient columns), with its few-shot
n-way, its headline metric and its domain (`in`: chest X-ray, for Q2). Every field is described in
`medssl_utils/user_entries.py`.

The worked example below runs in the `mini` world. "Your" model is a mini-zoo checkpoint saved under a new
name with its keys under a `backbone.` prefix, as a Lightning module would save it; "your" dataset is an
ImageFolder written from the MedSynth Montgomery images. Both files are written under the cache folder.
Run with your own `extra_models` / `extra_datasets`, the page evaluates those instead.
"""),
    parameters_cell(),
    setup_cell(),
    md("""
## The two declarations

When no files are given, the example writes its checkpoint, its image folder and the two YAML files (paths in
them are relative to the YAML file).
"""),
    code("""
from pathlib import Path

import torch
import yaml

from medssl_utils.models.checkpoints import safe_load
from medssl_utils.models.minizoo import WEIGHTS_DIR

BUILT_IN_MODELS = ["mini-sup-s0", "mini-simclr-s0"]
BUILT_IN_DATASETS = ["medsynth-montgomery", "medsynth-bach"]
if cfg.extra_models or cfg.extra_datasets:   # yours: evaluate them beside the built-ins the parameters name
    own = cfg
else:
    example = Path(cfg.cache_dir) / "own-example"
    (example / "my_xrays").mkdir(parents=True, exist_ok=True)
    ckpt = example / "my_simclr.pt"
    if not ckpt.is_file():   # "your" checkpoint: mini-zoo weights, keys under a Lightning-style prefix
        state = safe_load(WEIGHTS_DIR / "mini-simclr-s0.pt")
        torch.save({f"backbone.{k}": v for k, v in state.items()}, ckpt)
    source = runs.dataset(cfg, "medsynth-montgomery")   # "your" images: one folder per class
    for i in range(len(source)):
        target = example / "my_xrays" / source.classes[source.labels[i]].split(" (")[0] / f"{i:04d}.png"
        if not target.is_file():
            target.parent.mkdir(exist_ok=True)
            source.image(i).save(target)
    models_yml = {"models": [{
        "name": "my-simclr", "title": "My SimCLR (a renamed mini-zoo checkpoint)", "family": "self-supervised",
        "architecture": "mini_resnet18_w16", "checkpoint": ckpt.name, "layout": "plain", "strip_prefix": "backbone.",
        "preprocessing": "imagenet", "input_size": 32}]}
    data_yml = {"datasets": [{
        "name": "my-xrays", "title": "My X-rays (MedSynth Montgomery images)", "domain": "in",
        "imagefolder": "my_xrays", "fewshot_ways": 2, "metric": "accuracy",
        "manyshot": []}]}   # [linear, finetune] adds the many-shot protocols
    for name, text in (("my_models.yml", models_yml), ("my_data.yml", data_yml)):
        (example / name).write_text(yaml.safe_dump(text, sort_keys=False))
        print(f"# {name}\\n{(example / name).read_text()}")
    same = {k: v for k, v in cfg.as_dict().items() if k != "profile"}   # this page's parameters, plus the example
    own = config.resolve(cfg.profile, **{**same, "extra_models": [str(example / "my_models.yml")],
                                         "extra_datasets": [str(example / "my_data.yml")],
                                         "models": BUILT_IN_MODELS + ["my-simclr"],
                                         "datasets": BUILT_IN_DATASETS + ["my-xrays"]})
print(config.describe(own))
"""),
    md("""
## Few-shot transfer, yours beside the built-ins

The Q1 page's Table 3 layout: prototypical networks on frozen features, mean accuracy over the episodes ± the
95% CI. "My SimCLR" holds the same weights as the mini SimCLR recipe's seed 0, so its row must match that
recipe's seed-0 values; "My X-rays" holds the MedSynth Montgomery images, so its column is close to that one
(the same images, other episodes). Neither is a check the code makes for you: it is what to look for when you
bring your own.
"""),
    code("""
rows = runs.run_grid(own, ["fewshot"], progress=False)
report.styled(report.run_table(rows, "fewshot"), "own-fewshot", f"Few-shot accuracy: your entries and the built-ins "
              f"({own.profile} profile, {own.n_episodes} episodes)")
""", tags=["hide-input"]),
    code("""
glue("own_n_rows", f"{len(rows)}", display=False)
glue("own_n_models", f"{rows.model.nunique()}", display=False)
glue("own_n_datasets", f"{rows.dataset.nunique()}", display=False)
""", tags=["remove-cell"]),
    md("""
This run: {glue:text}`own_n_rows` result rows, {glue:text}`own_n_models` models on
{glue:text}`own_n_datasets` datasets.

## Your entries on the Q1-Q3 pages

The same two files put your entries on every page. From the repository root (relative paths are relative to
it), for example:

```bash
medssl check --profile mini -p extra_models=my_models.yml -p extra_datasets=my_data.yml \\
    -p 'models=[mini-sup-s0, mini-simclr-s0, my-simclr]' -p 'datasets=[medsynth-chexpert, medsynth-eyepacs, my-xrays]'
medssl notebooks --profile mini --only q1_supervised_vs_selfsupervised \\
    -p extra_models=my_models.yml -p extra_datasets=my_data.yml \\
    -p 'models=[mini-sup-s0, mini-simclr-s0, my-simclr]' -p 'datasets=[medsynth-chexpert, medsynth-eyepacs, my-xrays]'
```

A model's `family` decides its group in the Q1 and Q2 figures; a dataset's `domain` decides its side in Q2.
A model or dataset with the name of a built-in entry is refused, so the paper's rows are never mixed up with
yours.
"""),
]
write(cells, "own_model_dataset")
