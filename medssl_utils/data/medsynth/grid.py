"""The MedSynth counterpart of the paper's Figure 1: a few examples per class of each set."""
from __future__ import annotations

import numpy as np

from ..base import DatasetError


def example_grid(names, per_class: int = 4, image_size: int = 64, seed: int = 0):
    """One row block per set, ``per_class`` examples of every class; generated in memory at a small scale."""
    import matplotlib.pyplot as plt

    from ..registry import get_spec

    names = [names] if isinstance(names, str) else list(names)
    if not names or per_class < 1:
        raise DatasetError("example_grid: give at least one dataset name and per_class >= 1")
    rows = []
    for name in names:
        spec = get_spec(name)
        if not spec.synthetic:
            raise DatasetError(f"example_grid: {name!r} is not a MedSynth set")
        n = max(per_class + 1, 2)
        ds = spec.loader(spec, cache_dir=None, image_size=image_size, seed=seed,
                         **{**spec.options, "n_per_class": n, "scale": 1.0})
        rows.append((spec, ds))
    n_cols = max(len(s.classes) for s, _ in rows) * per_class
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(0.9 * n_cols, 1.15 * len(rows) + 0.6), squeeze=False)
    for r, (spec, ds) in enumerate(rows):
        for c_idx, cname in enumerate(spec.classes):
            members = np.flatnonzero(ds.labels == c_idx)[:per_class]
            for j, i in enumerate(members):
                ax = axes[r, c_idx * per_class + j]
                ax.imshow(ds.images[i], interpolation="nearest")
                if j == 0:
                    ax.set_title(cname, fontsize=6, loc="left")
        axes[r, 0].set_ylabel(spec.title.replace(" (synthetic)", ""), fontsize=6, rotation=0, ha="right",
                              va="center")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.images:
                ax.axis("off")
    fig.suptitle(f"MedSynth examples: SYNTHETIC images, not medical data ({image_size} px, seed {seed})",
                 fontsize=9)
    fig.tight_layout()
    return fig
