"""Stage 2, evaluation: full-ranking metrics, CTR metrics, statistics over users and seeds, validation-only model selection."""
