"""Writes notebooks/datasets.ipynb (no outputs): the dataset registry, MedSynth examples and learnability."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Datasets

Every table on this page is read from the dataset registry (`medssl_utils.data.registry`) and the paper's
Table 1 (`medssl_utils.reference.dataset_table()`); nothing is typed by hand. The paper (section 4.2) uses
eight medical datasets. This project cannot ship them, so the default profile runs on **MedSynth**:
procedurally generated, **synthetic** stand-ins that keep each dataset's classes and protocol role.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
from medssl_utils.book import pages
""", tags=["remove-cell"]),
    md("""
## The paper's datasets

Classes are those left after the paper's label conversion (section 4.2.2); Table 1 of the paper counts the
images and the classes of the published release, before that conversion.
"""),
    code("""
real = pages.real_dataset_table()
pages.show(real.drop(columns=["URL", "Licence", "Label policy"]))
""", tags=["hide-input"]),
    md("### Label policies, sources and licences"),
    code("""
pages.show(real[["Dataset", "Label policy", "URL", "Licence"]])
""", tags=["hide-input"]),
    md("""
### Native layouts and switches

With the `paper` profile each dataset is read as its publisher ships it; nothing is converted or copied. One
rule for all eight: `data_root/<folder>/` holds the publisher's archive extracted there as published, the
archive's own top folder kept, e.g. `data_root/montgomery/MontgomerySet/CXR_png/` and
`data_root/chexpert/CheXpert-v1.0/train.csv`; ChestX-ray14 and EyePACS ship loose files, so theirs start with
the files (`data_root/chestx14/Data_Entry_2017.csv`, `data_root/eyepacs/trainLabels.csv`). The top folder
dropped, or one extra wrapper folder (a download's own folder), is recognised too; anything else is refused
in one line that shows the expected first files.

Where the publisher names patients (CheXpert's `patientNNNNN` folders, ChestX-ray14's `Patient ID`,
EyePACS's `<patient>_left/right` images) a random split keeps all of a patient's images on one side
(`split_by: patient`, the default, recorded as a `group` column in the split manifest); `split_by: image`
splits images one by one, as the authors' code did. The other five releases name no patients and are split
per image.

The switches are loader options, set per dataset through the notebooks' `options` parameter, e.g.
`options={"datasets": {"ichallenge_pm": {"pm_grouping": "normal_vs_myopic"}}}`. The defaults follow the
paper; the other values reproduce the authors' code (see the methods page, "Deviations").
"""),
    code("""
pages.show(pages.real_layouts_table())
""", tags=["hide-input"]),
    md("The loaders' own documentation, as written in their modules:"),
    code("""
display(Markdown(pages.real_layouts_markdown()))
""", tags=["hide-input"]),
    md("""
## MedSynth: the synthetic stand-ins

Each MedSynth set plays the role of one real dataset (same classes, few-shot ways, many-shot protocols,
metric and split rule); `medsynth-cxr-source` is the chest-X-ray pretraining pool of the mini-zoo's
domain-specific recipes. Sizes are those this run generates (the profile's `dataset_scale`).
"""),
    code("""
if pages.uses_medsynth(cfg):
    pages.show(pages.medsynth_table(cfg.dataset_scale, cfg.image_size))
else:
    print(f"This run ({cfg.profile} profile) reads no MedSynth set; this section and the learnability floor below apply to runs that do.")
""", tags=["hide-input"]),
    md("""
### Examples per class

The counterpart of the paper's Figure 1, from the run's own datasets. With MedSynth, **these images are
synthetic**: drawn by the MedSynth generators, with no patient data; they imitate the label-relevant structure
of each modality, not its appearance in detail. With the `paper` profile they are the first images of each class
as the loaders read them.
"""),
    code("""
fig = pages.example_figure(cfg, per_class=3)
""", tags=["hide-input"]),
    md("""
### Are the MedSynth labels learnable?

A floor for every result on MedSynth: a logistic regression on the raw pixels, average-pooled to 16 x 16,
fitted on the train and validation images of the run's split manifest and scored once on its held-out test
images (the same split the protocols use), with a bootstrap 95% interval. Chance is the score of the best
constant guess (the majority class share; 1/K for mean per-class accuracy).
"""),
    code("""
learn = pages.learnability_table(cfg) if pages.uses_medsynth(cfg) else pd.DataFrame(
    columns=["MedSynth set", "CI above chance", "Above chance (points)"])
pages.show(learn)
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
print(f"{int(learn['CI above chance'].sum())} of {len(learn)} sets above chance")
""", tags=["remove-cell"]),
    code("""
glue("ds_n_above", f"{int(learn['CI above chance'].sum())}", display=False)
glue("ds_n_sets", f"{len(learn)}", display=False)
weakest = learn.loc[learn['Above chance (points)'].astype(float).idxmin()] if len(learn) else None
glue("ds_weakest", weakest['MedSynth set'] if weakest is not None else "none", display=False)
glue("ds_weakest_margin", f"{weakest['Above chance (points)']:.1f}" if weakest is not None else "n/a", display=False)
""", tags=["remove-cell"]),
    md("""
In this run the pixel baseline's 95% interval lies above chance on {glue:text}`ds_n_above` of
{glue:text}`ds_n_sets` MedSynth sets; the smallest margin, {glue:text}`ds_weakest_margin` points, is on
{glue:text}`ds_weakest`. A pretrained backbone that scores near this floor has learned little that raw pixels
do not already give.
"""),
]
write(cells, "datasets")
