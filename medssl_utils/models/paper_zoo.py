"""The paper's 13 checkpoints (section 4.1), with sources as the authors' code names them.

Filled in by the model-zoo work (issue 4): urls, file names, layouts and converters.
"""
from .registry import ModelSpec, register

register(ModelSpec(name="supervised_r18", title="Supervised (r18)", family="supervised", arch="resnet18",
                   feature_dim=512, preprocessing="imagenet", layout="torchvision",
                   urls=("https://download.pytorch.org/models/resnet18-f37072fd.pth",),
                   filename="resnet18-f37072fd.pth", pretrain_data="ImageNet-1k", method="supervised",
                   imagenet_top1=72.12))
