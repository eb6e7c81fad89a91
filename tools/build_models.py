"""Writes notebooks/models.ipynb (no outputs): the paper's checkpoints, weights status and the mini-zoo cards."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Models

Every table on this page is read from the model registry (`medssl_utils.models.registry`), the weights
folder and the mini-zoo's manifest. The paper (section 4.1) evaluates 13 published checkpoints; the default
profile runs the **mini-zoo** instead: small backbones this project pretrains itself with the same method
families, on a synthetic natural-image corpus and on MedSynth chest X-rays.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
from medssl_utils.book import pages
""", tags=["remove-cell"]),
    md("""
## Terminology (the paper's Table 2)

How the pages group this run's models and datasets: model categories come from each registry record's family,
dataset domains from its domain (chest X-ray or not), as in the paper's Table 2.
"""),
    code("""
pages.show(pages.terminology_table(list(cfg.models) + list(cfg.analysis_models), cfg.datasets))
""", tags=["hide-input"]),
    md("""
## The paper's 13 checkpoints

Source URLs are where the authors' code fetched each model; the layout names the converter that turns the
original file into a plain torchvision backbone (`medssl weights`). ImageNet top-1 is the value in the
authors' results file, the one the paper correlates with.
"""),
    code("""
zoo_paper = pages.paper_models_table()
pages.show(zoo_paper.drop(columns=["Source URL(s)", "Original file"]))
""", tags=["hide-input"]),
    md("### Files and sources"),
    code("""
pages.show(zoo_paper[["Model", "Original file", "Source URL(s)"]])
""", tags=["hide-input"]),
    md("### Notes on conversion and preprocessing"),
    code("""
pages.show(pages.paper_model_notes())
""", tags=["hide-input"]),
    md("## Weights status"),
    code("""
status, note = pages.weights_status(cfg.weights_dir)
display(Markdown(note))
if status is not None:
    display(pages.show(status))
""", tags=["hide-input"]),
    md("""
## The mini-zoo

One small ResNet-18-style backbone per recipe, several seeds each. Every model is scored by a linear probe on
held-out images of its source task (the synthetic natural-image corpus, or the MedSynth chest-X-ray source
for the domain recipes) beside the same probe on randomly initialised backbones: a recipe earns its place
only if it beats random initialisation by more than the seed spread.
"""),
    code("""
zoo = pages.read_minizoo()
if zoo.note:
    display(Markdown(f"**Note.** {zoo.note}"))
pages.show(pages.minizoo_table(zoo))
""", tags=["hide-input"]),
    md("### Pretraining loss"),
    code("""
fig = pages.loss_curve_figure(zoo)
if fig is None:
    display(Markdown("No mini-zoo model has been trained yet, so there are no loss curves to show."))
""", tags=["hide-input"]),
    md("### Linear-probe accuracy per recipe"),
    code("""
fig = pages.probe_figure(zoo)
if fig is None:
    display(Markdown("No mini-zoo model has been trained yet, so there are no probe accuracies to show."))
""", tags=["hide-input"]),
    code("""
cards = pages.minizoo_table(zoo)
glue("mz_n_models", f"{len(zoo.models)}", display=False)
glue("mz_n_recipes", f"{int((cards['Seeds built'] != 'not built yet').sum())}", display=False)
glue("mz_n_total", f"{len(cards)}", display=False)
passing = cards[cards["Margin > spread"] == "yes"]
failing = cards[cards["Margin > spread"].isin(["NO", "too few seeds"])]
glue("mz_n_pass", f"{len(passing)}", display=False)
glue("mz_fail", ", ".join(f"{r} ({m} points, spread {s})" for r, m, s in
                          zip(failing.Recipe, failing["Margin (points)"], failing["Seed spread (points)"])) or "none",
     display=False)
glue("mz_min_margin", (f"{passing['Margin (points)'].astype(float).min():+.1f}" if len(passing) else "n/a"), display=False)
""", tags=["remove-cell"]),
    md("""
This run found {glue:text}`mz_n_models` published mini-zoo models, covering {glue:text}`mz_n_recipes` of the
{glue:text}`mz_n_total` recipes. {glue:text}`mz_n_pass` recipes beat random initialisation on their source
task's probe by more than their seed spread (the smallest such margin: {glue:text}`mz_min_margin` points).
Recipes that do not: {glue:text}`mz_fail`.

The probe favours the supervised recipes by construction: they were trained on the very labels it asks for
(the corpus classes, or the chest-X-ray source labels for the MIMIC-CheXpert analogue). The self-supervised
recipes never saw a label, so a margin well above random init, not parity with supervised, is what shows that
they learned something. Their transfer to the MedSynth tasks is what the Q1 and Q2 pages measure.
"""),
]
write(cells, "models")
