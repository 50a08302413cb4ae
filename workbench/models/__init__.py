"""Stage 5, models: the recommender contract and registry (:mod:`.base`), the reference baselines, the graph
recommenders (MF-BPR, LightGCN, VBPR, FREEDOM) on their shared pieces (adjacency, content graph, sampling,
losses), MoToRec, the next-item models (:mod:`.sequential`: SASRec, GRU4Rec and their references) and generative
retrieval (:mod:`.generative`: the code trie, constrained beam search, the T5 generator). Importing the package
registers every model."""
from . import baselines, ctr, freedom, generative, lightgcn, mf, motorec, oracle, sequential, vbpr  # noqa: F401
