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

from medssl_utils import user_entries

if cfg.extra_models or cfg.extra_datasets:   # yours: evaluate them beside the built-ins the parameters name
    own = cfg
else:                                         # the example: files written under cache_dir/own-example
    own = user_entries.with_example(cfg)
    for path in own.extra_models + own.extra_datasets:
        print(f"# {Path(path).name}\\n{Path(path).read_text()}")
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
rows = grid.run(own, ["fewshot"], progress=False)
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
