"""Stage 4, tokenizers: residual quantizers, RQ-VAE, MMQ, the k-means family, modality paradigms, semantic ids and
codebook health."""
