"""Stage 5, models: the recommender contract, baselines, the graph recommenders and MoToRec."""
