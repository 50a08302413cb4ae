"""Model lookup by name."""
from __future__ import annotations

from ..data.dataset import RecDataset
from .graph_model import GraphModel


def model_classes() -> dict[str, type]:
    """Registry: name -> class of every graph model (MoToRec included)."""
    from .freedom import FREEDOM
    from .lightgcn import LightGCN
    from .mf import MFBPR
    from .motorec import MoToRec
    from .vbpr import VBPR

    return {"mf-bpr": MFBPR, "lightgcn": LightGCN, "vbpr": VBPR, "freedom": FREEDOM, "motorec": MoToRec}


def make_model(name: str, dataset: RecDataset, config=None, **options) -> GraphModel:
    """Build the graph model ``name`` (``mf-bpr``, ``lightgcn``, ``vbpr``, ``freedom``, ``motorec``) for
    ``dataset``; ``options`` override fields of its config."""
    classes = model_classes()
    key = name.lower()
    if key not in classes:
        raise KeyError(f"unknown model {name!r}; expected one of {list(classes)}")
    return classes[key](dataset, config, **options)
