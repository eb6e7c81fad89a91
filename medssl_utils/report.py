"""Tables and figures shared by the notebooks: this run beside the paper's published numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.registry import get_spec as dataset_spec
from .models.registry import get_spec as model_spec


def fmt_ci(value: float, low: float, high: float, digits: int = 2) -> str:
    if np.isnan(low) or np.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {(high - low) / 2:.{digits}f}"


def pivot(rows: pd.DataFrame, *, protocol: str, metric: str | None = None, digits: int = 2) -> pd.DataFrame:
    """Models x datasets table of 'mean ± CI half-width' strings, with display titles."""
    r = rows[rows.protocol == protocol]
    if metric is not None:
        r = r[r.metric == metric]
    if r.empty:
        return pd.DataFrame()
    r = r.assign(cell=[fmt_ci(v, lo, hi, digits) for v, lo, hi in zip(r.value, r.ci_low, r.ci_high)],
                 Model=[model_spec(m).title for m in r.model],
                 Dataset=[dataset_spec(d).title for d in r.dataset])
    order_m = list(dict.fromkeys(r.Model))
    order_d = list(dict.fromkeys(r.Dataset))
    return r.pivot(index="Model", columns="Dataset", values="cell").reindex(index=order_m, columns=order_d)


def bar_figure(rows: pd.DataFrame, *, protocol: str, title: str, ylabel: str = "accuracy (%)"):
    import matplotlib.pyplot as plt

    r = rows[rows.protocol == protocol].copy()
    r["Model"] = [model_spec(m).title for m in r.model]
    r["Dataset"] = [dataset_spec(d).title for d in r.dataset]
    datasets = list(dict.fromkeys(r.Dataset))
    models = list(dict.fromkeys(r.Model))
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(datasets)), 3.2))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(datasets))
    for k, m in enumerate(models):
        sub = r[r.Model == m].set_index("Dataset").reindex(datasets)
        err = (sub.ci_high - sub.ci_low).to_numpy() / 2
        ax.bar(x + k * width - 0.4 + width / 2, sub.value.to_numpy(), width, yerr=err, capsize=2, label=m)
    ax.set_xticks(x, datasets, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, frameon=False)
    fig.tight_layout()
    return fig
