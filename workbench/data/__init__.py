"""Stage 1, data: the dataset container, the synthetic catalogue, offline encoders, loaders, splits and
cold-start strata."""
