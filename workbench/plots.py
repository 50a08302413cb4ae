"""Plot functions. Each returns a matplotlib ``Figure`` and takes an optional ``ax`` (where it draws one
panel); save with :func:`workbench.paths.save_figure`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .dataset import RecDataset
from .strata import DEFAULT_EDGES


def _axes(ax, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def plot_degree_distribution(degree: np.ndarray, edges: tuple[int, ...] = DEFAULT_EDGES, ax=None, title: str = ""):
    """Histogram of item training degrees ``(n_items,)`` on log-log axes, the strata boundaries marked and the
    number of items per stratum in the legend."""
    fig, ax = _axes(ax)
    degree = np.asarray(degree)
    bins = np.unique(np.r_[0, np.logspace(0, np.log10(max(degree.max(), 2)) + 0.01, 30).astype(int)])
    counts, _ = np.histogram(degree, bins=np.r_[bins, bins[-1] + 1])
    ax.bar(bins + 1, counts, width=np.diff(np.r_[bins, bins[-1] + 1]) * 0.9, align="edge", color="tab:blue", alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    bounds = [0, *edges]
    labels = ["0"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])] + [f">={edges[-1]}"]
    colors = ["tab:red", "tab:orange", "tab:olive", "tab:green"]
    for i, (lo, label) in enumerate(zip(bounds, labels)):
        hi = bounds[i + 1] if i + 1 < len(bounds) else degree.max() + 1
        n = int(((degree >= lo) & (degree < hi)).sum()) if i + 1 < len(bounds) else int((degree >= lo).sum())
        ax.axvspan(lo + 1, hi + 1, color=colors[i % len(colors)], alpha=0.12, label=f"{label}: {n} items")
    ax.set_xlabel("training interactions + 1 (log)")
    ax.set_ylabel("items (log)")
    ax.set_title(title or "Item degree distribution and cold-start strata")
    ax.legend(fontsize=8)
    return fig


def plot_item_grid(dataset: RecDataset, item_ids, attributes=("category", "colour", "pattern", "material"),
                   ncols: int = 4, title_chars: int = 38):
    """A grid of items: image, title and planted attributes. Needs ``dataset.images`` and ``dataset.items``."""
    import matplotlib.pyplot as plt
    import textwrap

    if dataset.images is None or dataset.items is None:
        raise ValueError(f"{dataset.name}: plot_item_grid needs item images and metadata")
    item_ids = list(item_ids)
    nrows = int(np.ceil(len(item_ids) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), item_ids):
        row = dataset.items.iloc[i]
        ax.imshow(dataset.images[i], interpolation="nearest")
        title = textwrap.shorten(str(row.get("title", "")), title_chars)
        attrs = ", ".join(str(row[a]) for a in attributes if a in row)
        ax.set_title(f"#{i} {title}\n{attrs}", fontsize=7.5)
    fig.tight_layout()
    return fig


def project_2d(X: np.ndarray, method: str = "tsne", seed: int = 0, max_points: int | None = None) -> np.ndarray:
    """2-D map of ``X`` ``(n, d)`` by t-SNE (scikit-learn) or UMAP (umap-learn) -> ``(n, 2)``.
    Features are standardised and reduced to 50 PCA components first (the usual recipe)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float32))
    if X.shape[1] > 50 and X.shape[0] > 50:
        X = PCA(50, random_state=seed).fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (len(X) - 1) / 3), init="pca", random_state=seed).fit_transform(X)
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(X)
    raise ValueError(f"unknown method {method!r}; expected 'tsne' or 'umap'")


def plot_embedding_map(coords: np.ndarray, labels, ax=None, title: str = "", legend: bool = True, s: float = 8):
    """Scatter of 2-D ``coords`` ``(n, 2)`` coloured by categorical ``labels`` ``(n,)``."""
    fig, ax = _axes(ax, figsize=(5, 5))
    labels = pd.Series(np.asarray(labels))
    for j, value in enumerate(sorted(labels.unique(), key=str)):
        m = (labels == value).to_numpy()
        ax.scatter(coords[m, 0], coords[m, 1], s=s, alpha=0.75, label=str(value), color=f"C{j % 10}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", frameon=False)
    return fig


def plot_stratum_metrics(frames: dict[str, pd.DataFrame], metric: str = "recall@20", ax=None):
    """Grouped bars: ``metric`` per stratum (rows of each :meth:`RankingReport.to_frame`) for several models."""
    fig, ax = _axes(ax, figsize=(7, 4))
    table = pd.DataFrame({model: frame[metric] for model, frame in frames.items()})
    table.plot.bar(ax=ax, rot=0)
    ax.set_ylabel(metric)
    ax.set_xlabel("stratum (training interactions of the test item)")
    ax.set_title(f"{metric} overall and per stratum")
    return fig
