"""Semantic-ID Workbench: multimodal semantic-ID recommenders (MoToRec, CEMG, MMQ) for teaching and analysis.

This module only re-exports the public names that notebooks use; each lives in the module named after its
concept (see README.md for the map).
"""
from .core.config import PROFILES, configure, get_profile
from .tokenizers.health import attribute_purity, attribute_scores, code_case_study, code_usage, collision_rate, compare_tokenizers, health_summary, level_entropy, level_health, unique_fraction
from .data.dataset import TEST, TRAIN, VALID, DataError, RecDataset, statistics_table
from .models.adjacency import NormalizedAdjacency
from .models.content_graph import content_graph, knn_graph
from .models.sampling import sample_triplets
from .models.freedom import FREEDOM
from .models.mf import MFBPR
from .models.vbpr import VBPR
from .models.graph_model import GraphModel
from .models.lightgcn import LightGCN
from .models.registry import make_model, model_classes
from .training.graph_loop import GraphFitResult, GraphTrainConfig, fit_graph
from .tokenizers.kmeans import OPQ, ProductQuantizer, RQKMeans
from .data.loaders import load_ml100k, load_mmrec, load_sequences, read_sequences, save_mmrec
from .evaluation.ranking import DotScorer, RankingReport, dot_scores, evaluate_ranking, evaluate_split
from .evaluation.selection import EarlyStopping
from .evaluation.ctr import auc, gauc
from .evaluation.statistics import bootstrap_ci, paired_test, t_halfwidth
from .tokenizers.mmq import MMQConfig, MMQOutput, MMQTokenizer
from .models.motorec import ABLATIONS, MoToRec, MoToRecConfig, ablation_config, rarity_weights
from .tokenizers.modalities import ModalitySeparated, fuse_modalities, modality_slices, standardize
from .core.paths import cache_dir, data_dir, figures_dir, repo_root, save_figure, shared_data_dir
from .analysis.plots import LiveCurves, plot_code_map, plot_code_usage, plot_cold_map, plot_degree_distribution, plot_embedding_map, plot_item_grid, plot_sensitivity, plot_stratum_metrics, plot_timing, plot_training_curves, project_2d
from .tokenizers.quantizer import QuantizerConfig, QuantizerOutput, ResidualQuantizer, SoftIndex, kmeans, nearest_code, quantize_group, rotate_onto, soft_index
from .models.baselines import PopularityRecommender, RandomRecommender
from .models.base import Recommendation, Recommender
from .tokenizers.regularizers import diversity_loss, orthogonal_loss, soft_assignment, sparsity_kl, weighted_mean
from .tokenizers.rqvae import RQVAE, RQVAEConfig, RQVAEOutput, TokenizerModule, forward_group
from .tokenizers.semantic_ids import SemanticIds, add_dedup_level, collision_report, reassign_last_level, sinkhorn
from .core.runtime import get_device, seed_everything
from .data.splits import leave_one_out, random_split, temporal_split
from .data.strata import cold_mask, degree_strata, popularity_quartiles
from .analysis.studies import StudyConfig, compare_runs, evaluation_strata, restricted_report, run_table, study_config, summarize, train_model
from .data.synthetic import CatalogueConfig, catalogue_config, load_synthetic, make_catalogue
from .training.tokenizer_loop import LabConfig, TrainConfig, fit_tokenizer, lab_config

__version__ = "0.1.0"
