"""Semantic-ID Workbench: multimodal semantic-ID recommenders (MoToRec, CEMG, MMQ) for teaching and analysis.

This module only re-exports the public names that notebooks use; each lives in the module named after its
concept (see README.md for the map).
"""
from .config import PROFILES, configure, get_profile
from .health import (attribute_purity, attribute_scores, code_case_study, code_usage, collision_rate,
                     compare_tokenizers, health_summary, level_entropy, level_health, unique_fraction)
from .dataset import TEST, TRAIN, VALID, DataError, RecDataset, statistics_table
from .graph import NormalizedAdjacency, content_graph, knn_graph, sample_triplets
from .graph_models import FREEDOM, MFBPR, VBPR, GraphModel, LightGCN, make_model, model_classes
from .graph_training import GraphFitResult, GraphTrainConfig, fit_graph
from .kmeans_quantizers import OPQ, ProductQuantizer, RQKMeans
from .loaders import load_ml100k, load_mmrec, load_sequences, read_sequences, save_mmrec
from .metrics import (DotScorer, EarlyStopping, RankingReport, auc, bootstrap_ci, dot_scores, evaluate_ranking,
                      evaluate_split, gauc, paired_test, t_halfwidth)
from .mmq import MMQConfig, MMQOutput, MMQTokenizer
from .motorec import ABLATIONS, MoToRec, MoToRecConfig, ablation_config, rarity_weights
from .modalities import ModalitySeparated, fuse_modalities, modality_slices, standardize
from .paths import cache_dir, data_dir, figures_dir, repo_root, save_figure, shared_data_dir
from .plots import (LiveCurves, plot_code_map, plot_code_usage, plot_cold_map, plot_degree_distribution,
                    plot_embedding_map, plot_item_grid, plot_sensitivity, plot_stratum_metrics, plot_timing,
                    plot_training_curves, project_2d)
from .quantizers import (QuantizerConfig, QuantizerOutput, ResidualQuantizer, SoftIndex, kmeans, nearest_code,
                         quantize_group, rotate_onto, soft_index)
from .recommender import PopularityRecommender, RandomRecommender, Recommendation, Recommender
from .regularizers import diversity_loss, orthogonal_loss, soft_assignment, sparsity_kl, weighted_mean
from .rqvae import RQVAE, RQVAEConfig, RQVAEOutput, TokenizerModule, forward_group
from .semantic_ids import SemanticIds, add_dedup_level, collision_report, reassign_last_level, sinkhorn
from .runtime import get_device, seed_everything
from .splits import leave_one_out, random_split, temporal_split
from .strata import cold_mask, degree_strata, popularity_quartiles
from .studies import (StudyConfig, compare_runs, evaluation_strata, restricted_report, run_table, study_config,
                      summarize, train_model)
from .synthetic import CatalogueConfig, catalogue_config, load_synthetic, make_catalogue
from .training import LabConfig, TrainConfig, fit_tokenizer, lab_config

__version__ = "0.1.0"
