"""The explorer's ipywidgets front end: three tabs (item, code, user) wired to :class:`~workbench.analysis.explorer.
Explorer`. Each tab's content is built by a panel function (:func:`item_panel`, :func:`code_panel`,
:func:`user_panel`) that returns the things to display (headings, tables, figures), so the panels are tested
without a browser; :class:`ExplorerApp` only clears an output area and displays a panel when a control changes.
A request the data cannot answer shows :class:`~workbench.analysis.explorer.ExplorerError`'s message in the panel.
"""
from __future__ import annotations

import html

import pandas as pd

from .explorer import Explorer, ExplorerError


class Note(str):
    """A line of text in a panel (rendered as HTML; ``kind="error"`` in red)."""

    kind = "text"

    def __new__(cls, text: str, kind: str = "text"):
        note = super().__new__(cls, text)
        note.kind = kind
        return note

    def _repr_html_(self) -> str:
        colour = "#b00020" if self.kind == "error" else "inherit"
        weight = "bold" if self.kind == "heading" else "normal"
        return (f'<div class="wb-explorer-{self.kind}" style="color:{colour};font-weight:{weight}">'
                f"{html.escape(str(self))}</div>")


def _guarded(build):
    """``build()``'s panel, or one error note with the explorer's message."""
    try:
        return build()
    except ExplorerError as err:
        return [Note(str(err), "error")]


def item_panel(explorer: Explorer, query, tokenizer: str | None = None, k: int = 8) -> list:
    """Search ``query`` (an id or part of a title); for the first match: its card, its codes under every tokenizer,
    the nearest items by shared prefix under ``tokenizer`` and by embedding (tables, and images where the dataset
    has them)."""
    def build():
        matches = explorer.search(query)
        item = int(matches["item_id"].iloc[0])
        out = [] if len(matches) == 1 else [Note(f"{len(matches)} matches (the 5 most-interacted below); showing "
                                                 "the first", "text"), matches.head(5)]
        card = explorer.item_card(item)
        out += [Note(f"#{item} {card['title']}", "heading"), card.to_frame("item").T, explorer.strip(
            explorer.items_table([item]), ncols=1)]
        if explorer.codes:
            out += [Note("codes", "heading"), explorer.item_codes(item)]
            name = tokenizer or next(iter(explorer.codes))
            near = explorer.neighbours_by_prefix(item, name, k)
            out += [Note(f"nearest by shared prefix under {name}", "heading"), near,
                    explorer.strip(near, "shared_prefix")]
        near = explorer.neighbours_by_embedding(item, k)
        out += [Note("nearest by embedding", "heading"), near, explorer.strip(near, "similarity")]
        return [o for o in out if o is not None]
    return _guarded(build)


def code_panel(explorer: Explorer, tokenizer: str, level: int, code: int, k: int = 16) -> list:
    """The items holding ``code`` at ``level`` of ``tokenizer``: counts (items, cold), attribute purity against
    the base rate, the most-interacted members (table and images)."""
    def build():
        summary = explorer.code_summary(tokenizer, level, code)
        members = explorer.code_members(tokenizer, level, code, limit=k)
        head = Note(f"{tokenizer}, level {level}, code {code}: {summary.attrs['items']} items, "
                    f"{summary.attrs['cold']} cold", "heading")
        return [o for o in (head, summary, members, explorer.strip(members, "degree")) if o is not None]
    return _guarded(build)


def user_panel(explorer: Explorer, user, k: int = 10) -> list:
    """The user's history (with images), the generator's beam and the ranker's top items, cold items and the
    held-out target flagged."""
    def build():
        history = explorer.user_history(user)
        out = [Note(f"user {user}: {len(history)} items in the history", "heading"), history.tail(k),
               explorer.strip(history.tail(8), "position")]
        for label, model, table in (("generator's beam", explorer.generator, explorer.generator_beam),
                                    ("ranker's top items", explorer.ranker, explorer.ranker_top)):
            if model is not None:
                top = table(user, k)
                out += [Note(f"{label}: {int(top['cold'].sum())} of {len(top)} cold, target "
                             f"{'found' if top['target'].any() else 'not found'}", "heading"), top,
                        explorer.strip(top.head(8), "rank")]
        return [o for o in out if o is not None]
    return _guarded(build)


class ExplorerApp:
    """Three tabs over an :class:`Explorer`; ``app.widget`` is what a notebook displays. The controls:
    ``item_query``, ``item_tokenizer``; ``code_tokenizer``, ``code_level``, ``code_value``; ``user_id``."""

    def __init__(self, explorer: Explorer, k: int = 8):
        import ipywidgets as w

        self.explorer, self.k = explorer, k
        names = list(explorer.codes) or ["(none)"]
        first = int(explorer.degree.argmax())  # the most-interacted item opens the item and code tabs
        levels = max((c.shape[1] for c in explorer.codes.values()), default=1)
        self.item_query = w.Text(value=str(first), description="item", placeholder="id or part of a title",
                                 continuous_update=False)
        self.item_tokenizer = w.Dropdown(options=names, description="tokenizer")
        self.code_tokenizer = w.Dropdown(options=names, description="tokenizer")
        self.code_level = w.BoundedIntText(value=1, min=1, max=levels, description="level")
        self.code_value = w.IntText(value=int(explorer.codes[names[0]][first, 0]) if explorer.codes else 0,
                                    description="code")
        self.user_id = w.Text(value=str(int(explorer.dataset.user_degree(None).argmax())), description="user",
                              continuous_update=False)
        self.outputs = {tab: w.Output() for tab in ("item", "code", "user")}
        for control, tab in ((self.item_query, "item"), (self.item_tokenizer, "item"), (self.code_tokenizer, "code"),
                             (self.code_level, "code"), (self.code_value, "code"), (self.user_id, "user")):
            control.observe(lambda _, tab=tab: self.refresh(tab), names="value")
        boxes = [w.VBox([w.HBox([self.item_query, self.item_tokenizer]), self.outputs["item"]]),
                 w.VBox([w.HBox([self.code_tokenizer, self.code_level, self.code_value]), self.outputs["code"]]),
                 w.VBox([self.user_id, self.outputs["user"]])]
        self.widget = w.Tab(children=boxes, titles=("Item", "Code", "User"))
        self.widget.add_class("wb-explorer")
        for tab in self.outputs:
            self.refresh(tab)

    def panel(self, tab: str) -> list:
        """The current content of ``tab`` (``"item"``, ``"code"`` or ``"user"``) for the controls' values."""
        ex = self.explorer
        if tab == "item":
            return item_panel(ex, self.item_query.value, self.item_tokenizer.value if ex.codes else None, self.k)
        if tab == "code":
            return code_panel(ex, self.code_tokenizer.value, self.code_level.value, self.code_value.value, 2 * self.k)
        if tab == "user":
            return user_panel(ex, self.user_id.value, self.k)
        raise ValueError(f"unknown tab {tab!r}; expected item, code or user")

    def refresh(self, tab: str) -> None:
        """Redraw one tab's output area (figures as PNG images, whatever the kernel's matplotlib backend)."""
        from IPython.display import display

        out = self.outputs[tab]
        out.clear_output(wait=True)
        with out:
            for thing in self.panel(tab):
                display(figure_image(thing) if hasattr(thing, "savefig") else thing)


def figure_image(fig, dpi: int = 80):
    """A matplotlib figure as an IPython PNG image (the figure is closed): a callback's display shows a picture
    even where the kernel has no inline figure formatter."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Image(data=buffer.getvalue(), format="png")


def explorer_tables_html(panel: list) -> str:
    """A panel's notes and tables as one HTML string (figures left out): what a test or a report reads."""
    parts = []
    for thing in panel:
        if isinstance(thing, Note):
            parts.append(thing._repr_html_())
        elif isinstance(thing, (pd.DataFrame, pd.Series)):
            parts.append(thing.to_frame().to_html() if isinstance(thing, pd.Series) else thing.to_html())
    return "\n".join(parts)
