"""The mini-zoo: small backbones this project pretrains itself (issue 8). Never the paper's checkpoints."""
from ..registry import ModelSpec, register

# Walking-skeleton stand-in until the mini-zoo ships pretrained weights.
register(ModelSpec(name="mini-random-r18", title="Random init (ResNet-18, mini)", family="random",
                   arch="resnet18", feature_dim=512, preprocessing="imagenet", input_size=64,
                   profile="mini", method="random init", pretrain_data="none",
                   extra={"init_seed": 0}))
