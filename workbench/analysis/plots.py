"""Plot functions. Each returns a matplotlib ``Figure`` and takes an optional ``ax`` (where it draws one
panel); save with :func:`workbench.core.paths.save_figure`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import RecDataset
from ..data.strata import DEFAULT_EDGES


def _axes(ax, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _panels(axes, n: int, size: tuple[float, float]):
    """``(figure, axes)``: the given ``axes``, or a new row of ``n`` panels of ``size`` inches each."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False)
        axes = axes.ravel()
    return axes[0].figure, axes


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
                   ncols: int = 4, title_chars: int = 38, captions=None):
    """A grid of items: image, title and planted attributes (or one caption per item). Needs ``dataset.images``
    and ``dataset.items``."""
    import matplotlib.pyplot as plt
    import textwrap

    if dataset.images is None or dataset.items is None:
        raise ValueError(f"{dataset.name}: plot_item_grid needs item images and metadata")
    item_ids = list(item_ids)
    nrows = int(np.ceil(len(item_ids) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if captions is not None and len(captions) != len(item_ids):
        raise ValueError(f"{len(captions)} captions for {len(item_ids)} items")
    for n, (ax, i) in enumerate(zip(axes.ravel(), item_ids)):
        row = dataset.items.iloc[i]
        ax.imshow(dataset.images[i], interpolation="nearest")
        title = textwrap.shorten(str(row.get("title", "")), title_chars)
        attrs = ", ".join(str(row[a]) for a in attributes if a in row) if captions is None else str(captions[n])
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


def plot_embedding_map(coords: np.ndarray, labels, ax=None, title: str = "", legend: bool = True, s: float = 8,
                       palette: dict | None = None):
    """Scatter of 2-D ``coords`` ``(n, 2)`` coloured by categorical ``labels`` ``(n,)``; ``palette`` maps a label
    to its colour (e.g. each colour name to that colour; the default cycles matplotlib's)."""
    fig, ax = _axes(ax, figsize=(5, 5))
    labels = pd.Series(np.asarray(labels))
    for j, value in enumerate(sorted(labels.unique(), key=str)):
        m = (labels == value).to_numpy()
        color = palette[value] if palette is not None and value in palette else f"C{j % 10}"
        ax.scatter(coords[m, 0], coords[m, 1], s=s, alpha=0.75, label=str(value), color=color)
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


def plot_cold_start(summary: pd.DataFrame, metrics=("overall", "cold full", "cold among"), axes=None,
                    titles: dict[str, str] | None = None):
    """One panel per metric (each on its own scale, so the cold panels are readable next to the overall one): a
    bar per model with its 95% error bar, and the chance level as a dashed line. ``summary`` is
    :func:`~workbench.analysis.studies.cold_start_summary`'s long frame (``model, metric, mean, halfwidth``; its
    ``chance`` rows give the lines)."""
    fig, axes = _panels(axes, len(metrics), (4.2, 3.6))
    titles = titles or {}
    for ax, metric in zip(axes, metrics):
        rows = summary[summary["metric"] == metric]
        bars = rows[rows["model"] != "chance"]
        colors = ["0.55" if m in ("random", "popularity", "oracle") else f"C{j % 10}"
                  for j, m in enumerate(bars["model"])]
        ax.bar(range(len(bars)), bars["mean"], yerr=bars["halfwidth"], color=colors, capsize=3)
        chance = rows.loc[rows["model"] == "chance", "mean"]
        if len(chance):
            ax.axhline(float(chance.iloc[0]), color="black", linestyle="--", linewidth=1,
                       label=f"chance {float(chance.iloc[0]):.4f}")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xticks(range(len(bars)), bars["model"], rotation=35, ha="right", fontsize=8)
        ax.set_title(titles.get(metric, metric))
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("Recall@20 (mean, 95% CI)")
    fig.tight_layout()
    return fig


def plot_training_curves(history: pd.DataFrame, columns: list[str], ax=None, title: str = "",
                         best_epoch: int | None = None):
    """``history[columns]`` against the epoch (e.g. a fitted model's ``history_``): losses (``loss_*``) on the
    left axis, other columns (validation metrics, code health) on a right axis of their own, so neither squashes
    the other; ``best_epoch`` is marked with a vertical line."""
    fig, ax = _axes(ax, figsize=(6.5, 3.5))
    present = [c for c in columns if c in history]
    losses = [c for c in present if c.startswith("loss")]
    others = [c for c in present if not c.startswith("loss")]
    handles = []
    left = ax if losses or not others else None
    if losses:
        handles += [ax.plot(history.index, history[c], marker=".", label=c, color=f"C{j}")[0]
                    for j, c in enumerate(losses)]
        ax.set_ylabel("loss")
    if others:
        right = ax.twinx() if left is not None else ax
        handles += [right.plot(history.index, history[c], marker=".", linestyle="--", label=c,
                               color=f"C{len(losses) + j}")[0] for j, c in enumerate(others)]
        right.set_ylabel(", ".join(others) if len(others) < 3 else "metrics")
    if best_epoch is not None:
        handles.append(ax.axvline(best_epoch, color="0.4", linestyle=":", label=f"best epoch {best_epoch}"))
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(handles=handles, fontsize=8, loc="best")
    return fig


def plot_code_usage(codes: np.ndarray, K: int, ax=None, title: str = "", ymax: float | None = None):
    """Items per code at each level ``(L, K)``, codes sorted by usage (most used first), one line per level, and
    the uniform usage ``n_items / K`` as a dashed line: a flat line at that level is perfect usage, a cliff is
    collapse. ``ymax`` puts several panels on one scale."""
    from ..tokenizers.health import code_usage

    fig, ax = _axes(ax, figsize=(6, 3.5))
    codes = np.asarray(codes)
    usage = np.sort(code_usage(codes, K), axis=1)[:, ::-1]
    for level, row in enumerate(usage):
        ax.plot(np.arange(1, K + 1), row, label=f"level {level + 1}", color=f"C{level}")
    ax.axhline(len(codes) / K, color="black", linestyle="--", linewidth=1, label=f"uniform ({len(codes) / K:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("codes, most used first (log)")
    ax.set_ylabel("items per code")
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.set_title(title or "Items per code")
    ax.legend(fontsize=7)
    return fig


def plot_code_map(coords: np.ndarray, codes: np.ndarray, top: int = 10, ax=None, title: str = ""):
    """2-D map ``(n, 2)`` of latents coloured by code ``(n,)`` (the ``top`` most used codes; the rest grey),
    with each shown code's centroid marked and labelled."""
    fig, ax = _axes(ax, figsize=(5.5, 5.5))
    codes = np.asarray(codes)
    values, counts = np.unique(codes, return_counts=True)
    shown = values[np.argsort(-counts)[:top]]
    rest = ~np.isin(codes, shown)
    ax.scatter(coords[rest, 0], coords[rest, 1], s=5, color="0.85", label="other codes")
    for j, code in enumerate(shown):
        m = codes == code
        ax.scatter(coords[m, 0], coords[m, 1], s=7, color=f"C{j % 10}", alpha=0.8)
        cx, cy = coords[m].mean(0)
        ax.scatter([cx], [cy], marker="X", s=90, color=f"C{j % 10}", edgecolor="black", linewidth=0.8)
        ax.annotate(str(code), (cx, cy), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"Latents coloured by code (top {top}); X = centroid")
    return fig


class LiveCurves:
    """A training callback (``model.fit(..., callback=LiveCurves(...))``) that redraws training curves in place in
    a notebook (one figure, updated every ``every`` epochs); outside a notebook it simply keeps the rows.

    >>> live = LiveCurves(["loss_total"], display=False)
    >>> live({"epoch": 1, "loss_total": 2.0}); live.frame()["loss_total"].tolist()
    [2.0]
    """

    def __init__(self, columns: list[str], every: int = 1, title: str = "", display: bool = True):
        self.columns, self.every, self.title, self.display = columns, every, title, display
        self.rows: list[dict] = []
        self._handle = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).set_index("epoch")

    def __call__(self, row: dict) -> None:
        self.rows.append(row)
        if not self.display or row["epoch"] % self.every:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = plot_training_curves(self.frame(), self.columns, title=self.title)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


def plot_cold_map(coords: np.ndarray, labels, cold: np.ndarray, ax=None, title: str = "", legend: bool = True,
                  s: float = 6):
    """MoToRec Fig. 6: a 2-D map ``(n, 2)`` of item embeddings coloured by ``labels`` ``(n,)`` (e.g. category),
    warm items as dots and cold items ``cold`` ``(n,)`` bool as larger crosses *of their own label's colour*: a
    good map puts each cross among dots of its colour."""
    fig, ax = _axes(ax, figsize=(5, 5))
    cold = np.asarray(cold, dtype=bool)
    labels = pd.Series(np.asarray(labels))
    for j, value in enumerate(sorted(labels.unique(), key=str)):
        m = (labels == value).to_numpy()
        ax.scatter(coords[m & ~cold, 0], coords[m & ~cold, 1], s=s, alpha=0.5, color=f"C{j % 10}", label=str(value))
        ax.scatter(coords[m & cold, 0], coords[m & cold, 1], s=4 * s, marker="x", color=f"C{j % 10}", linewidth=1.2)
    ax.scatter([], [], s=4 * s, marker="x", color="black", label="cold (x)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", frameon=False)
    return fig


def knn_agreement(X: np.ndarray, labels, items: np.ndarray | None = None, k: int = 10) -> float:
    """Share of the ``k`` nearest neighbours (cosine, among all rows of ``X`` ``(n, d)``) that carry the same label
    as the query, averaged over the query rows ``items`` (boolean mask or ids; default all): how well an embedding
    space groups items by a planted attribute (chance is the label shares' sum of squares)."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float32)
    labels = np.asarray(labels)
    rows = np.arange(len(X)) if items is None else np.flatnonzero(items) if np.asarray(items).dtype == bool \
        else np.asarray(items)
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(X)
    _, idx = nn.kneighbors(X[rows])
    neighbours = idx[:, 1:]  # the query itself comes first
    return float((labels[neighbours] == labels[rows][:, None]).mean())


def plot_sensitivity(grid: pd.DataFrame, x: str, group: str, columns: list[str], axes=None,
                     errors: dict[str, str] | None = None):
    """MoToRec Fig. 4: one panel per metric in ``columns``, ``x`` on the horizontal axis, one line per value
    of ``group`` (e.g. gamma against Recall@20, one line per K). ``errors`` maps a column to the column of its
    95% half-width (error bars); the vertical axis starts at 0, so a difference smaller than the seed noise
    does not look like a slope."""
    fig, axes = _panels(axes, len(columns), (5, 3.5))
    errors = errors or {}
    for ax, col in zip(axes, columns):
        for value, g in grid.groupby(group):
            g = g.sort_values(x)
            yerr = g[errors[col]] if col in errors else None
            ax.errorbar(g[x], g[col], yerr=yerr, marker="o", capsize=3, label=f"{group}={value}")
        ax.set_xlabel(x)
        ax.set_title(col)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_timing(timing: pd.DataFrame, columns=("sec/epoch", "eval sec"), titles=("training seconds per epoch",
                "full-ranking evaluation seconds")):
    """MoToRec Fig. 7: bars of per-model timings (rows: models)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.5), squeeze=False)
    for ax, col, title in zip(axes.ravel(), columns, titles):
        timing[col].plot.bar(ax=ax, rot=0, title=title)
    fig.tight_layout()
    return fig


def plot_bars_ci(summary: pd.DataFrame, columns, axes=None, reference: dict[str, float] | None = None,
                 highlight: str | None = None):
    """One panel per column of ``summary`` (rows: models, as :func:`~workbench.analysis.generative.mean_and_ci`
    gives it): a bar per model with its 95% interval (``<column> ci``); ``reference`` draws a dashed line per
    column (e.g. chance); ``highlight`` colours one model's bar."""
    fig, axes = _panels(axes, len(columns), (max(4.0, 0.55 * len(summary) + 1.5), 3.4))
    for ax, col in zip(axes, columns):
        err = summary[f"{col} ci"] if f"{col} ci" in summary else None
        colours = ["tab:red" if m == highlight else "tab:blue" for m in summary.index]
        ax.bar(range(len(summary)), summary[col], yerr=err, capsize=3, color=colours)
        ax.set_xticks(range(len(summary)), summary.index, rotation=45, ha="right", fontsize=8)
        if reference and col in reference:
            ax.axhline(reference[col], ls="--", c="grey", lw=1, label="chance")
            ax.legend(fontsize=8)
        ax.set_title(col)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def plot_metric_lines(summary: pd.DataFrame, x, columns, axes=None, xlabel: str = ""):
    """One panel per column: the rows of ``summary`` (as :func:`~workbench.analysis.generative.mean_and_ci`
    gives them) as a line over ``x`` (one value per row), with the 95% interval (``<column> ci``) as error bars
    (MMQ Fig. 5: metrics against the id length)."""
    fig, axes = _panels(axes, len(columns), (3.2, 2.9))
    for ax, col in zip(axes, columns):
        err = summary[f"{col} ci"] if f"{col} ci" in summary else None
        ax.errorbar(list(x), summary[col], yerr=err, marker="o", capsize=3)
        ax.set_xticks(list(x))
        ax.set_title(col, fontsize=9)
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def plot_efficiency(timing: pd.DataFrame, stages, rate: str = "test users/s", ax=None):
    """CEMG Fig. 3: stacked bars of training seconds per stage (rows: models, ``stages``: columns) with the
    inference speed ``rate`` as a line on a second axis."""
    fig, ax = _axes(ax, (max(5.0, 0.8 * len(timing) + 2), 3.6))
    bottom = np.zeros(len(timing))
    for stage in stages:
        values = timing[stage].fillna(0).to_numpy(dtype=float)
        ax.bar(range(len(timing)), values, bottom=bottom, label=stage)
        bottom += values
    ax.set_xticks(range(len(timing)), timing.index, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("training seconds")
    ax.legend(fontsize=8, loc="upper left")
    right = ax.twinx()
    right.plot(range(len(timing)), timing[rate], "ko-", label=rate)
    right.set_ylabel(rate)
    right.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def plot_parameter_panels(grid: pd.DataFrame, params, metric: str, baseline: float | None = None, axes=None):
    """CEMG Fig. 4: one panel per parameter (rows of ``grid`` with ``param``, ``value``, ``metric`` and
    optionally ``<metric> ci``); ``baseline`` marks the study's own setting's value as a dashed line."""
    fig, axes = _panels(axes, len(params), (3.4, 3.0))
    for ax, p in zip(axes, params):
        g = grid[grid["param"] == p].sort_values("value")
        yerr = g[f"{metric} ci"] if f"{metric} ci" in g else None
        ax.errorbar(range(len(g)), g[metric], yerr=yerr, marker="o", capsize=3)
        ax.set_xticks(range(len(g)), [f"{v:g}" for v in g["value"]])
        if baseline is not None:
            ax.axhline(baseline, ls="--", c="grey", lw=1)
        ax.set_title(f"{p} ({metric})", fontsize=9)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig
