"""Stage 3, training: the one training loop every model family runs through."""
