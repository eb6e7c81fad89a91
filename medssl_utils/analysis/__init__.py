"""Analysis tools of paper section 4.4: saliency, feature inversion, invariance, correlation statistics.

Every function takes tensors/arrays (a backbone ``nn.Module`` plus a ``normalise`` callable where the
model's input is needed) and returns arrays or numbers; none reads files of the project or its settings.
"""
from ._common import AnalysisError, batchnorm_mode
from .correlation import LinearFit, linear_fit, minmax_per_dataset, pearson
from .invariance import (TransformSet, Whitening, features_of, fit_whitening, horizontal_flips, hue_shifts,
                         invariance, multiview_pairs, rotations, similarities)
from .reconstruction import (Reconstruction, SkipGenerator, headline_metric, invert_features,
                             lpips_weights_present, perceptual_distance)
from .saliency import attentive_diffusion, occlusion_saliency, scaled_patch

__all__ = [
    "AnalysisError", "batchnorm_mode",
    "occlusion_saliency", "attentive_diffusion", "scaled_patch",
    "invert_features", "Reconstruction", "SkipGenerator", "perceptual_distance", "headline_metric",
    "lpips_weights_present",
    "fit_whitening", "Whitening", "similarities", "invariance", "multiview_pairs", "TransformSet",
    "rotations", "horizontal_flips", "hue_shifts", "features_of",
    "pearson", "linear_fit", "LinearFit", "minmax_per_dataset",
]
