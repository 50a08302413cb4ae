"""Stage 6, analysis: multi-seed studies and plots."""
