"""The paper's 13 checkpoints (section 4.1), with sources as the authors' code names them.

Provenance (copied here so nothing reads /work/shared at run time):
* models, weight URLs, original file layouts, heads, feature dims and the normalisation the authors used:
  jonahanton/SSL_medicalimaging @77fceef (``download_and_prepare_models.py``, history file
  ``download_and_prepare_domainspecific_models.py`` @3213fea), linusericsson/ssl-transfer @416913f,
  CovidPrognosis ``configs/models.yaml``, the MoCo-CXR README; as summarised in
  AUTHORS_CODE.md §2.
* ``imagenet_top1``: the authors' ``results/imagenet-top1.csv`` (also the ``imagenet top1`` column of
  ``results/full_data.csv``). These are the values the paper correlates with; they are not torchvision's
  documented V1 accuracies (r18 69.76, r50 76.13, d121 74.43). The domain-specific models have none.
* ``extra['code_name']``: the authors' ``models/<code_name>.pth``; ``extra['results_row']``: the model's
  row in ``results/full_data.csv``.

Preprocessing (paper 4.1): ImageNet mean/std for all but SimCLR-v1 (``none``: [0, 1] input, it was not
trained on normalised inputs) and MIMIC-CheXpert (``histeq``: histogram equalisation to 0-255, as
CovidPrognosis trains it). MoCo-CXR gets ImageNet normalisation, as the authors fed it, although it was
pretrained with its own CXR statistics: ``load_backbone(name, ..., normalisation="cxr")`` is the switch.
"""
from .registry import ModelSpec, register

_IMAGENET = "ImageNet-1k (1.28M images, no labels)"
_MOCO_CXR_NOTE = ("Trained by MoCo-CXR with CXR normalisation (mean 0.5020, std 0.085585, MoCo-CXR image_transform.py); "
                  "the authors fed ImageNet-normalised inputs, which is our default. "
                  "normalisation='cxr' in load_backbone gives the model's own statistics (a sensitivity check). "
                  "In the authors' code it is called 'mimic-cxr_*', which means MoCo-CXR, not MIMIC-CXR.")
_MIMIC_NOTE = ("CovidPrognosis MoCo (v1-style, no MLP) on MIMIC-CXR-JPG + CheXpert, DenseNet-121 with a 128-d "
               "classifier (dropped). Inputs are histogram-equalised to 0-255 as CovidPrognosis trains it "
               "(authors' code: automatic for 'mimic-chexpert' models). The released models are meant to be "
               "fine-tuned (CovidPrognosis #9).")

register(ModelSpec(
    name="simclr_v1", title="SimCLR-v1", family="self-supervised", arch="resnet50", feature_dim=2048,
    preprocessing="none", layout="simclr_v1",
    urls=("https://storage.cloud.google.com/simclr-gcs/checkpoints/ResNet50_1x.zip",),
    filename="resnet50-1x.pth", pretrain_data=_IMAGENET, method="SimCLR-v1 (ResNet-50 1x)", imagenet_top1=69.3,
    notes=("The release is a TensorFlow checkpoint; the authors converted it by hand with tonylins/simclr-converter, "
           "whose output {'state_dict': torchvision keys incl. fc} is the file this entry converts. SimCLR-v1 "
           "was not trained on normalised inputs, so it gets [0, 1] input (the authors' --no-norm)."),
    extra={"code_name": "simclr-v1", "results_row": "simclrv1",
           "manual": ("download ResNet50_1x.zip, convert its TensorFlow checkpoint with tonylins/simclr-converter "
                      "(python convert.py ResNet50_1x/model.ckpt-225206 resnet50-1x.pth), then run "
                      "`medssl weights convert simclr_v1 --source resnet50-1x.pth`")},
))

register(ModelSpec(
    name="moco_v2", title="MoCo-v2", family="self-supervised", arch="resnet50", feature_dim=2048,
    preprocessing="imagenet", layout="moco",
    urls=("https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",),
    filename="moco_v2_800ep_pretrain.pth.tar", pretrain_data=_IMAGENET, method="MoCo-v2 (800 epochs)",
    imagenet_top1=71.1,
    notes="Query encoder (module.encoder_q.*) without the 2-layer MLP head (fc.0, fc.2).",
    extra={"code_name": "moco-v2", "results_row": "mocov2"},
))

register(ModelSpec(
    name="swav", title="SwAV", family="self-supervised", arch="resnet50", feature_dim=2048,
    preprocessing="imagenet", layout="swav",
    urls=("https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",),
    filename="swav_800ep_pretrain.pth.tar", pretrain_data=_IMAGENET, method="SwAV (800 epochs, multi-crop)",
    imagenet_top1=75.3,
    notes="Plain DataParallel state dict (module.*); projection_head and prototypes dropped.",
    extra={"code_name": "swav", "results_row": "swav"},
))

register(ModelSpec(
    name="byol", title="BYOL", family="self-supervised", arch="resnet50", feature_dim=2048,
    preprocessing="imagenet", layout="byol",
    urls=("https://storage.googleapis.com/deepmind-byol/checkpoints/pretrain_res50x1.pkl",),
    filename="pretrain_res50x1.pkl", pretrain_data=_IMAGENET, method="BYOL (ResNet-50 x1)", imagenet_top1=74.3,
    notes=("DeepMind Haiku pickle, converted HWIO -> OIHW into a torchvision ResNet-50 as the authors (ERT's "
           "convert_byol) did. Caveat, deepmind-research #84: Haiku's TF 'SAME' padding is asymmetric for "
           "stride 2 and torchvision cannot reproduce it, so the converted model's features differ slightly "
           "from the original (about 70 % vs 74.6 % ImageNet top-1 reported). Read with a restricted "
           "unpickler (containers and numpy arrays only; no jax/haiku/dill needed)."),
    extra={"code_name": "byol", "results_row": "byol"},
))

register(ModelSpec(
    name="pirl", title="PIRL", family="self-supervised", arch="resnet50", feature_dim=2048,
    preprocessing="imagenet", layout="pirl",
    urls=("https://www.dropbox.com/sh/87d24jqsl6ra7t2/AADN4jKnvTI0U5oT6hTmQZz8a/PIRL.pth",),
    filename="PIRL.pth", pretrain_data=_IMAGENET, method="PIRL (PyContrast re-implementation)", imagenet_top1=61.7,
    notes=("Weights from the PyContrast model zoo (HobbitLong/PyContrast), not the PIRL authors, as in the paper. "
           "Encoder under module.encoder.*; contrastive/jigsaw heads dropped. The Dropbox link may have rotted."),
    extra={"code_name": "pirl", "results_row": "pirl"},
))

register(ModelSpec(
    name="supervised_r50", title="Supervised (r50)", family="supervised", arch="resnet50", feature_dim=2048,
    preprocessing="imagenet", layout="torchvision",
    urls=("https://download.pytorch.org/models/resnet50-0676ba61.pth",),
    filename="resnet50-0676ba61.pth", pretrain_data="ImageNet-1k (labels)", method="supervised",
    imagenet_top1=77.2,
    notes=("torchvision resnet50(pretrained=True) = IMAGENET1K_V1 (older torchvision served the same weights as "
           "resnet50-19c8e357.pth). ERT calls it 'supervised'."),
    extra={"code_name": "supervised_r50", "results_row": "supervised r50", "sha256_prefix": "0676ba61"},
))

register(ModelSpec(
    name="supervised_r18", title="Supervised (r18)", family="supervised", arch="resnet18", feature_dim=512,
    preprocessing="imagenet", layout="torchvision",
    urls=("https://download.pytorch.org/models/resnet18-f37072fd.pth",),
    filename="resnet18-f37072fd.pth", pretrain_data="ImageNet-1k (labels)", method="supervised",
    imagenet_top1=72.12,
    notes="torchvision resnet18(pretrained=True) = IMAGENET1K_V1 (older torchvision: resnet18-5c106cde.pth).",
    extra={"code_name": "supervised_r18", "results_row": "supervised r18", "sha256_prefix": "f37072fd"},
))

register(ModelSpec(
    name="supervised_d121", title="Supervised (d121)", family="supervised", arch="densenet121", feature_dim=1024,
    preprocessing="imagenet", layout="torchvision",
    urls=("https://download.pytorch.org/models/densenet121-a639ec97.pth",),
    filename="densenet121-a639ec97.pth", pretrain_data="ImageNet-1k (labels)", method="supervised",
    imagenet_top1=74.98,
    notes=("torchvision densenet121(pretrained=True); the file uses 2017 key names (denselayer1.norm.1.weight), "
           "renamed by the converter as torchvision does. The authors' top-1 CSV calls it 'densenet_121'."),
    extra={"code_name": "supervised_d121", "results_row": "supervised d121", "sha256_prefix": "a639ec97"},
))

for _lr in ("0.01", "0.1", "1.0"):
    _file = f"mimic-chexpert_lr_{_lr}_bs_128_fd_128_qs_65536.pt"
    register(ModelSpec(
        name=f"mimic_chexpert_lr{_lr}", title=f"MIMIC-CheXpert (lr={_lr})", family="domain-specific",
        arch="densenet121", feature_dim=1024, preprocessing="histeq", layout="mimic_chexpert",
        urls=(f"https://dl.fbaipublicfiles.com/CovidPrognosis/pretrained_models/{_file}",),
        filename=_file, pretrain_data="MIMIC-CXR-JPG + CheXpert (chest X-rays, no labels)",
        method=f"MoCo (CovidPrognosis), lr {_lr}, batch 128, 128-d features, queue 65536", imagenet_top1=None,
        notes=_MIMIC_NOTE,
        extra={"code_name": f"mimic-chexpert_lr_{_lr}", "results_row": f"mimic-chexpert lr={_lr}"},
    ))

register(ModelSpec(
    name="moco_cxr_r18", title="MoCo-CXR (r18)", family="domain-specific", arch="resnet18", feature_dim=512,
    preprocessing="imagenet", layout="moco_cxr",
    urls=("https://storage.googleapis.com/moco-cxr/r8w-00001.pth.tar",),
    filename="r8w-00001.pth.tar", pretrain_data="CheXpert (chest X-rays, no labels), ImageNet initialisation",
    method="MoCo-v2 (MoCo-CXR), lr 1e-4, --mlp --from-imagenet", imagenet_top1=None, notes=_MOCO_CXR_NOTE,
    extra={"code_name": "mimic-cxr_r18_lr_1e-4", "results_row": "mimic-cxr r18"},
))

register(ModelSpec(
    name="moco_cxr_d121", title="MoCo-CXR (d121)", family="domain-specific", arch="densenet121", feature_dim=1024,
    preprocessing="imagenet", layout="moco_cxr",
    urls=("https://storage.googleapis.com/moco-cxr/d1w-00001.pth.tar",),
    filename="d1w-00001.pth.tar", pretrain_data="CheXpert (chest X-rays, no labels), ImageNet initialisation",
    method="MoCo-v2 (MoCo-CXR), lr 1e-4", imagenet_top1=None, notes=_MOCO_CXR_NOTE,
    extra={"code_name": "mimic-cxr_d121_lr_1e-4", "results_row": "mimic-cxr d121"},
))
