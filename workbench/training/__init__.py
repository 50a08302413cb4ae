"""Stage 3, training: the one training loop every model family runs through (:mod:`.engine`), and its
checkpoints (:mod:`.checkpoint`)."""
