"""Writes notebooks/q3_what_features_encode.ipynb (no outputs)."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Q3: What do the pretrained features encode?

The paper (sections 4.4 and 5.3, Appendices A-D) looks inside the features with three tools: occlusion
saliency maps and their *attentive diffusion* (the share of the map above its mean: low = narrow focus),
deep-image-prior *reconstructions* from the last feature map scored by a perceptual distance (LPIPS), and
*invariances* (cosine similarity of whitened features of an image and its transformed copy). It then relates
each to few-shot transfer. Its answers: domain-specific models focus narrowly on chest X-rays (a clear linear
relation between attentive diffusion and CheXpert accuracy, Figure 7), reconstruction quality does not predict
transfer, and invariances do not either, except multi-view invariance on CheXpert (r = 0.82, p = 0.0068).

This page runs the same tools on the models and datasets of the chosen profile. Saliency and reconstruction
use one fixed image per dataset (the first test-split image of the last class, the pathology), as the paper
uses one image per dataset. In the `mini` and `smoke` profiles the datasets are **synthetic** MedSynth
stand-ins (marked †) and the models are the mini-zoo's small backbones, so every number below describes those,
not the paper's models.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
from medssl_utils.book import report_q3 as rq

rows = grid.run(cfg, grid.ANALYSES)
fewshot = grid.run(cfg, ["fewshot"], models=list(cfg.analysis_models))
dist_metric = rq.distance_metric(rows)
print(f"{len(rows)} analysis rows: {rows.model.nunique() if len(rows) else 0} models on "
      f"{rows.dataset.nunique() if len(rows) else 0} datasets; perceptual distance: {dist_metric}")
""", tags=["hide-input"]),
    code("""
def show_pair(table, uuid, title):
    this, paper, direction, note = rq.table_pair(rows, table, cfg=cfg)
    key = {"higher": "bold = best, underlined = second best (higher is better)",
           "lower": "bold = best, underlined = second best (lower distance is better)",
           None: "no ranking: attentive diffusion has no better direction"}[direction]
    if len(this):
        display(rq.styled(this, f"q3-{uuid}-run", f"Table {table} counterpart, this run ({cfg.profile}): {title}. "
                          f"{note + '. ' if note else ''}{key}", direction))
    else:
        display(Markdown(f"*Table {table}: this run has no rows for it (no such analysis or dataset in the profile).*"))
    display(rq.styled(paper, f"q3-{uuid}-paper", f"Table {table}: the paper's published values. {key}", direction))
""", tags=["remove-cell"]),
    md("""
## Saliency and attentive diffusion

Occlusion saliency: a patch (10 px at 242 px in the paper, scaled to the image size here) slides over the
image, the relative change of the pooled feature is added to every covered pixel, and the map is cropped to
where every pixel was covered equally. Attentive diffusion is the percentage of map pixels above the map's
mean; the paper prints it as a fraction (0.47 = 47 %).

Tables A4-A7 end, as the paper's do, with an image from the models' pretraining source: the paper's is an
ImageNet image; in the `mini` and `smoke` profiles it is a held-out image of the mini-zoo's natural-image
corpus (FractalDB-mini, column "source corpus†"), and under `paper` the first JPEG/PNG in
`data_root/imagenet/` (without one the column says "not run"). Columns follow the paper's order.

### Table A7: attentive diffusion
"""),
    code("""
show_pair("A7", "a7", "attentive diffusion (%) of each model's saliency map of the dataset's sample image")
""", tags=["hide-input"]),
    md("""
### Figure 8: saliency maps on the CheXpert(-like) image

The paper shows MoCo-CXR, BYOL and supervised ResNet-50 (attentive diffusion 0.33, 0.50, 0.47). Here: those
models when the run has them, else the model standing for each (`stands_for`), else the first analysis model
of the same family; the line under the panels says which model stands for which.
"""),
    code("""
fig8 = rq.figure8(cfg, rows)
""", tags=["hide-input"]),
    md("""
### Figure 9: attentive diffusion by model type, in and out of domain
"""),
    code("""
fig9 = rq.figure9(rows)
""", tags=["hide-input"]),
    md("""
### Figure 7: few-shot accuracy vs attentive diffusion on CheXpert(-like)

Each point is one analysis model; the error bars are the few-shot 95% CIs. The right panel recomputes the
paper's figure from its Tables A7 and 3 (its r and p are printed only on the figure image).
"""),
    code("""
fig7 = rq.figure7(rows, fewshot)
""", tags=["hide-input"]),
    md("""
### Figure A6: every saliency map
"""),
    code("""
figA6 = rq.figureA6(cfg, rows)
""", tags=["hide-input"]),
    md("""
### Figure A2: attentive diffusion vs few-shot accuracy, every dataset
"""),
    code("""
(figA2_run, statsA2_run), (figA2_paper, statsA2_paper) = rq.figureA2(rows, fewshot)
""", tags=["hide-input"]),
    md("""
## Reconstructions from the features

A deep-image-prior generator (the authors' "skip" network, with fewer levels for small images) is trained
from fixed noise so that the backbone's last feature map of its output matches the original's; the paper uses
3000 steps at 224 px, this profile uses `dip_steps`. The paper scores the result with LPIPS (AlexNet, VGG,
SqueezeNet). LPIPS needs ImageNet-trained trunk weights, which this machine cannot download: without them the
tables show **1 - SSIM, a substitute that is NOT LPIPS** (it measures structural similarity, not learned
perceptual similarity, and is on a different scale).

### Figure 6: reconstructions on the CheXpert(-like) image

The paper shows PIRL and supervised DenseNet-121; the models are chosen as for Figure 8.
"""),
    code("""
fig6 = rq.figure6(cfg, rows)
""", tags=["hide-input"]),
    md("""
### Table A4, Table A5, Table A6: perceptual distance (AlexNet, SqueezeNet, VGG)
"""),
    code("""
for table, net in (("A4", "AlexNet"), ("A5", "SqueezeNet"), ("A6", "VGG")):
    show_pair(table, table.lower(), f"perceptual distance of the reconstruction ({net} in the paper)")
""", tags=["hide-input"]),
    md("""
### Figure A3: perceptual distance vs few-shot accuracy

A straight line weighted by the few-shot CIs, with its reduced chi-square (the paper: no fit below 1.5).
"""),
    code("""
(figA3_run, statsA3_run), (figA3_paper, statsA3_paper) = rq.figureA3(rows, fewshot)
""", tags=["hide-input"]),
    md("""
### Figure A5: every reconstruction
"""),
    code("""
figA5 = rq.figureA5(cfg, rows)
""", tags=["hide-input"]),
    md("""
## Invariances

Mean and covariance of the pooled features come from the dataset's cached features (up to 1000 images;
Ledoit-Wolf shrinkage when there are fewer images than dimensions); each image's features are whitened and
the cosine similarity of the clean and transformed image is averaged over `invariance_images` images and the
transform parameters, the identity left out. Transforms as the authors ran them per dataset: rotation
(k = 20 angles: the paper does not give k; 20 is the authors' runner value for EyePACS and PM), horizontal
flip, hue (k = 5) and multi-view pairs (two views of one subject). Intervals: 95% normal intervals over images.

### Table A1: rotation and hue invariance
"""),
    code("""
show_pair("A1", "a1", "rotation and hue invariance (cosine similarity)")
""", tags=["hide-input"]),
    md("""
### Table A2: horizontal-flip invariance
"""),
    code("""
show_pair("A2", "a2", "horizontal-flip invariance (cosine similarity)")
""", tags=["hide-input"]),
    md("""
### Table A3: multi-view invariance
"""),
    code("""
show_pair("A3", "a3", "multi-view invariance (cosine similarity)")
""", tags=["hide-input"]),
    md("""
### Figure A1: invariance vs few-shot accuracy
"""),
    code("""
(figA1_run, statsA1_run), (figA1_paper, statsA1_paper) = rq.figureA1(rows, fewshot)
""", tags=["hide-input"]),
    md("""
## Figure A4: ImageNet top-1 vs transfer

From the paper's data: the authors' ImageNet top-1 values (their results file) against Table 3. The mini-zoo
has no ImageNet accuracy; its stand-in is each model's linear-probe accuracy on its natural-image source task
(FractalDB-mini), from the zoo's manifest, where the manifest has it.
"""),
    code("""
(figA4_run, statsA4_run), (figA4_paper, statsA4_paper) = rq.figureA4(fewshot, list(cfg.analysis_models))
if figA4_run is None:
    display(Markdown("*This run: no model has an ImageNet top-1 or a source-task probe accuracy in the manifest.*"))
""", tags=["hide-input"]),
    md("""
## Every correlation the paper states or shows

One row per correlation: the value the paper states (only s5.3's multi-view r is in its text; the authors'
notebook printed three more), recomputed from the paper's printed tables, from the authors' results file, and
from this run where it has at least three models with both numbers. "This run" uses each real dataset's
stand-in and, for the perceptual distance, the metric named in `this_metric`.
"""),
    code("""
corr = rq.correlations_table(rows, fewshot)
cols = ["where", "what", "stated_r", "stated_p", "r_paper_tables", "p_paper_tables", "n_paper_tables",
        "r_authors_file", "p_authors_file", "n_authors_file", "r_this_run", "p_this_run", "n_this_run", "this_metric"]
corr[cols].round(3)
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
for r in rows.sort_values(["protocol", "dataset", "model", "metric"]).itertuples():
    if r.metric == "attentive_diffusion":
        print(f"AD  {r.dataset:>20s} {r.model:>16s} {r.value:6.1f}")
    elif r.metric.startswith("invariance_"):
        print(f"INV {r.dataset:>20s} {r.model:>16s} {r.metric[11:]:>10s} {r.value:7.3f}")
""", tags=["hide-input"]),
    code("""
import numpy as np

def fmt(v, d=1):
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{d}f}"

ad_in, ad_out = rq.family_ad(rows, "in"), rq.family_ad(rows, "out")
p_in, p_out = rq.paper_family_ad("in"), rq.paper_family_ad("out")
glue("q3_profile", cfg.profile, display=False)
glue("q3_ad_in_ds", fmt(ad_in.get("domain-specific")), display=False)
glue("q3_ad_in_ssl", fmt(ad_in.get("self-supervised")), display=False)
glue("q3_ad_out_ds", fmt(ad_out.get("domain-specific")), display=False)
glue("q3_ad_out_ssl", fmt(ad_out.get("self-supervised")), display=False)
glue("q3_paper_ad_in_ds", fmt(p_in.get("domain-specific")), display=False)
glue("q3_paper_ad_in_ssl", fmt(p_in.get("self-supervised")), display=False)
glue("q3_paper_ad_out_ds", fmt(p_out.get("domain-specific")), display=False)
glue("q3_paper_ad_out_ssl", fmt(p_out.get("self-supervised")), display=False)
mv = corr[corr["where"].str.startswith("s5.3")].iloc[0]
glue("q3_mv_r", fmt(mv.r_this_run, 2), display=False)
glue("q3_mv_p", fmt(mv.p_this_run, 3), display=False)
glue("q3_mv_n", f"{int(mv.n_this_run)}", display=False)
glue("q3_mv_r_tables", fmt(mv.r_paper_tables, 2), display=False)
glue("q3_mv_r_file", fmt(mv.r_authors_file, 2), display=False)
f7 = corr[corr["where"].str.startswith("Figure 7")].iloc[0]
glue("q3_f7_r", fmt(f7.r_this_run, 2), display=False)
glue("q3_f7_n", f"{int(f7.n_this_run)}", display=False)
glue("q3_f7_r_paper", fmt(f7.r_paper_tables, 2), display=False)
glue("q3_f7_p_paper", fmt(f7.p_paper_tables, 3), display=False)
glue("q3_dist_metric", "LPIPS (mean of 3 nets)" if dist_metric == "lpips_mean" else "1 - SSIM (a substitute, not LPIPS)",
     display=False)
""", tags=["remove-cell"]),
    md("""
## Answer to Q3 in this run

In this run ({glue:text}`q3_profile` profile), the mean attentive diffusion on the in-domain (chest X-ray)
datasets is {glue:text}`q3_ad_in_ds` % for the domain-specific models and {glue:text}`q3_ad_in_ssl` % for the
ImageNet-style self-supervised ones (out of domain: {glue:text}`q3_ad_out_ds` % and {glue:text}`q3_ad_out_ssl` %;
"n/a": no model of that family in the run). The paper's Table A7 gives {glue:text}`q3_paper_ad_in_ds` % and
{glue:text}`q3_paper_ad_in_ssl` % in domain ({glue:text}`q3_paper_ad_out_ds` % and {glue:text}`q3_paper_ad_out_ssl` %
out of domain): the narrower in-domain focus of the domain-specific models is its Figure 9 claim.

Few-shot accuracy against attentive diffusion on the CheXpert stand-in gives r = {glue:text}`q3_f7_r` over
{glue:text}`q3_f7_n` models here; the paper's own Tables A7 and 3 give r = {glue:text}`q3_f7_r_paper`
(p = {glue:text}`q3_f7_p_paper`) over its ten rows. Multi-view invariance against few-shot accuracy on the
CheXpert stand-in gives r = {glue:text}`q3_mv_r` (p = {glue:text}`q3_mv_p`, {glue:text}`q3_mv_n` models); the
paper states r = 0.82 (p = 0.0068), while its printed Tables A3 and 3 give r = {glue:text}`q3_mv_r_tables` and the
authors' file over all its models r = {glue:text}`q3_mv_r_file` (the 0.82 needs one of the ten models left out;
see the correlations table). Reconstructions here are scored with {glue:text}`q3_dist_metric`. With few models
or synthetic data these correlations say little about the paper's claims; "n/a" marks what could not be computed.
"""),
]
write(cells, "q3_what_features_encode")
