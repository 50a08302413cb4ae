"""Benchmarks: ``python -m workbench.bench {eval,tokenizer,graph,graph-ablations,baby,generate,...} --json [--save]``, and
``python -m workbench.bench report`` (``BENCHMARKS.md`` and the README's table from the results ``--save`` keeps in
``figures/benchmarks/``).

Each benchmark reports a ratio to a reference measured in the same process, because absolute CPU seconds on a
shared machine drift by up to 3-4x between hours: ``eval_over_bound`` (the evaluation over its dense scoring
products and top-k alone), ``lightgcn_over_bound`` (a LightGCN epoch over its sparse products alone), the
tokenizer's ``throughput_ratio`` (ours over lucidrains' on the same data).

``graph``: training seconds per epoch of LightGCN, FREEDOM and MoToRec and full-ranking evaluation seconds on a
synthetic graph of Baby's shape (19,445 users, 7,050 items, 160,792 interactions, 4,096-d image and 384-d text
features), batch 2048, 64-d embeddings. ``baby``: LightGCN and MF-BPR on the real Baby interactions in
``../shared/data`` (skipped when absent), L2 weight chosen on validation.

``graph-ablations``: milliseconds per training step of FREEDOM, MoToRec and MoToRec's Table-3 variants
(``motorec-wo-cl``, ...) on the same graph, the models taking turns, and what each component costs per step (the
full model's time minus the variant's).

``eval``: seconds for one full-ranking evaluation (Recall/NDCG@10,20) of Baby's shape: 19,445 users x 7,050
items, 64-d embeddings, ~120k masked training positives and ~20.5k test positives, at least one per
user (random, seeded).

``tokenizer``: our RQ-VAE against lucidrains' ``vector-quantize-pytorch`` ``ResidualVQ`` (a benchmark-only
dependency) with the same MLP encoder/decoder (F-512-64), ``L = 4`` levels of ``K = 256`` codes, batch 1024, and
their defaults on both sides (rotation trick, EMA codebooks with decay 0.8, k-means init on one batch seeded by
random samples with 10 iterations, dead-code threshold 2; the commitment weights differ: ours 0.5, theirs
1.0, see BENCHMARKS.md): training
throughput (items/s, fastest epoch after the first), reconstruction error, per-level utilization and entropy,
collision rate, on three feature sets: the default synthetic catalogue (image + text, standardised), random
7,050 x 4,096 features (Baby's image-feature shape) and clustered 7,050 x 4,096 features (64 Gaussian centres
plus noise). ``quantizer_only`` compares the two residual quantizers alone on the same fixed clustered latents.

``generate``: trie-constrained beam search on a Beauty-shaped catalogue with a TIGER-sized T5 against free decoding
and ``transformers``' constrained ``generate`` (:mod:`workbench.bench.generate`).

``ctr``: our CTR DNN against DeepCTR-Torch's (a benchmark-only dependency) on MovieLens 100K's chronological CTR
split, training examples/s and test AUC over three seeds, and a behavior-aware fine-tuning step's time over a
frozen-id step's (:mod:`workbench.bench.ctr`).

``showdown``: notebook 05's cross-model cold-start study (:mod:`workbench.bench.showdown`).

``explorer``: seconds for the explorer to answer one selection (item, code, user panels and a title search) on the
paper profile's catalogue (:mod:`workbench.bench.explorer`).

``--seeds 0-9`` (or ``0,3,7``) runs a benchmark once per seed and prints ``{"runs": [...], "summary": ...}``;
the tokenizer summary holds, per feature set, the paired differences ours - theirs of each level's entropy
with 95% t-intervals, the colliding items summed over the seeds and the range of the throughput ratio; the
graph summary the range and mean of every timing and ratio.
"""
