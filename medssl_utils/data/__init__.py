"""Datasets: registry, native-layout loaders, MedSynth generators, split manifests."""
from .base import ArrayImageDataset, DatasetError, FileImageDataset, ImageDataset
from .registry import DatasetSpec, available, get_spec, load_dataset

__all__ = ["ArrayImageDataset", "DatasetError", "DatasetSpec", "FileImageDataset", "ImageDataset",
           "available", "get_spec", "load_dataset"]
