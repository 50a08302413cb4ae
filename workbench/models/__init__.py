"""Stage 5, models: the recommender contract and registry (:mod:`.base`), the reference baselines, the graph
recommenders (MF-BPR, LightGCN, VBPR, FREEDOM) on their shared pieces (adjacency, content graph, sampling,
losses), and MoToRec. Importing the package registers every model."""
from . import baselines, freedom, lightgcn, mf, motorec, oracle, vbpr  # noqa: F401  (each registers its models)
