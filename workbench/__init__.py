"""Semantic-ID Workbench: multimodal semantic-ID recommenders (MoToRec, CEMG, MMQ) for teaching and analysis.

This module only re-exports the public names (``import workbench as wb``; notebooks use ``wb.`` throughout).
Each lives in the module named after its concept, in the sub-package of its pipeline stage:
``core`` (profiles, configs, device, paths, storage, sparse kernels, torch.distributed), ``data``,
``evaluation``, ``training`` (the engine), ``tokenizers``, ``models``, ``analysis`` and ``bench``; README.md
has the map.
"""
from .analysis.generative import (MAIN_MODELS, TOKENIZERS, GenerativeStudyConfig, ItemTokens, NextItemRun,
                                  beam_agreement, cemg_ablations, cemg_sensitivity, generation_table,
                                  generative_data, generative_grid, generative_study_config, invalid_rate,
                                  exact_ranks, cold_diagnosis,
                                  level_accuracy, mean_and_ci, ci_text, next_item_table, run_next_item, tokenize,
                                  train_generator)
from .analysis.explorer import Explorer, ExplorerError, default_attributes
from .analysis.explorer_app import ExplorerApp, Note, code_panel, explorer_tables_html, item_panel, user_panel
from .analysis.lab import LabConfig, lab_config
from .analysis.showdown import (ShowdownConfig, attribute_table, duel_table, plot_attribute_gain, plot_duels, plot_showdown,
                                showdown_config, showdown_seed, showdown_summary, showdown_table)
from .analysis.showdown import kind as showdown_kind
from .analysis.mmq import (MMQData, MMQStudyConfig, evaluate_method, feature_modes, finetune_rank,
                           finetune_retrieve, make_tokenizer, mmq_data, mmq_grid, mmq_study_config, mmq_table,
                           quantization_metrics, rank, ranking_grid, retrieve)
from .analysis.plots import (LiveCurves, knn_agreement, plot_bars_ci, plot_efficiency, plot_metric_lines, plot_parameter_panels, plot_code_map, plot_code_usage, plot_cold_map, plot_cold_start,
                             plot_degree_distribution,
                             plot_embedding_map, plot_item_grid, plot_sensitivity, plot_stratum_metrics, plot_timing,
                             plot_training_curves, project_2d)
from .analysis.studies import (Run, StudyConfig, chance_metrics, cold_start_metrics, cold_start_summary,
                               ablation_variants, calibration_row, compare_runs, evaluation_strata, grid_runs,
                               paired_gain, popularity_study, reference_runs, restricted_report, run_table,
                               sensitivity_variants, cold_start_table,
                               study_config, summarize, train_model, tune_model)
from .bench.report import load_benchmark, saved_study
from .core.config import PROFILES, configure, get_profile
from .core.paths import cache_dir, data_dir, figures_dir, repo_root, save_figure, shared_data_dir
from .core.runtime import get_device, seed_everything
from .data.dataset import TEST, TRAIN, VALID, DataError, RecDataset, statistics_table
from .data.amazon23 import load_amazon23
from .data.choices import ChoiceModel
from .data.loaders import load_ml100k, load_mmrec, load_movielens_csv, load_sequences, read_sequences, save_mmrec
from .data.ctr import CTRData, ctr_data
from .data.sequences import PAD, SequenceData, sequence_split, sequence_table, tie_report
from .data.splits import leave_one_out, random_split, temporal_split
from .data.strata import cold_mask, cold_start_profile, degree_strata, gini, popularity_quartiles
from .data.synthetic import CatalogueConfig, catalogue_config, colour_palette, load_synthetic, make_catalogue
from .evaluation.ctr import auc, auc_by_stratum, gauc, gauc_report, log_loss, paired_bootstrap_auc, weighted_auc
from .evaluation.next_item import NextItemReport, chance_next_item, evaluate_next_item, rank_metrics, target_ranks
from .evaluation.ranking import DotScorer, RankingReport, evaluate_ranking, evaluate_split
from .evaluation.selection import EarlyStopping
from .evaluation.statistics import bootstrap_ci, paired_test, paired_values, t_halfwidth
from .models.adjacency import NormalizedAdjacency
from .models.base import Recommendation, Recommender, make_model, model_classes, register
from .models.baselines import PopularityRecommender, RandomRecommender
from .models.content_graph import content_graph, knn_graph
from .models.ctr import CTRConfig, CTRModel, CTRReport, SoftCoder, id_change_report, matched_dim
from .models.freedom import FREEDOM, FreedomConfig
from .models.generative.beam import BeamResult, beam_search
from .models.generative.finetune import SoftIdGenerator
from .models.generative.item_codes import (ItemCodes, collaborative_embeddings, item_codes, last_level_cost,
                                          resolve_collisions)
from .models.generative.generator import GENERATOR_SIZES, Generator, GeneratorConfig, generator_config, history_tokens
from .models.generative.trie import CodeTrie
from .models.graph_model import GraphModel
from .models.lightgcn import LightGCN, LightGCNConfig
from .models.mf import MFBPR, MFConfig
from .models.oracle import OracleRecommender
from .models.motorec import ABLATIONS, MoToRec, MoToRecConfig, ablation_config, rarity_weights
from .models.sampling import sample_triplets
from .models.vbpr import VBPR, VBPRConfig
from .models.sequential.base import NextItemRecommender, SequenceRanker
from .models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from .models.sequential.references import NextItemOracle, SequencePopularity
from .models.sequential.sasrec import SASRec, SASRecConfig
from .tokenizers.base import SoftCodes, Tokenizer, TokenizerModule
from .tokenizers.health import (attribute_purity, attribute_scores, code_case_study, code_usage, collision_rate,
                                compare_tokenizers, health_summary, level_entropy, level_health, unique_fraction)
from .tokenizers.fusion import CollaborativeFusion, FusionConfig
from .tokenizers.kmeans import OPQ, ProductQuantizer, RQKMeans
from .tokenizers.letter import LETTER, LETTERConfig
from .tokenizers.mmq import MMQConfig, MMQOutput, MMQTokenizer
from .tokenizers.modalities import ModalitySeparated, fuse_modalities, modality_slices, standardize
from .tokenizers.quantizer import (QuantizerConfig, QuantizerOutput, ResidualQuantizer, SoftIndex, kmeans,
                                   nearest_code, quantize_group, rotate_onto, soft_index)
from .tokenizers.regularizers import diversity_loss, orthogonal_loss, soft_assignment, sparsity_kl, weighted_mean
from .tokenizers.rqvae import RQVAE, RQVAEConfig, RQVAEOutput, forward_group
from .tokenizers.semantic_ids import SemanticIds, add_dedup_level, collision_report, reassign_last_level, sinkhorn
from .training.engine import Batch, FitResult, StepOutput, Trainable, TrainConfig

__version__ = "0.1.0"

__all__ = [
    # core: profiles, configs, device, paths
    "PROFILES", "configure", "get_profile", "get_device", "seed_everything",
    "cache_dir", "data_dir", "figures_dir", "repo_root", "save_figure", "shared_data_dir",
    # data
    "RecDataset", "DataError", "TRAIN", "VALID", "TEST", "statistics_table",
    "CatalogueConfig", "catalogue_config", "colour_palette", "load_synthetic", "make_catalogue",
    "load_ml100k", "load_mmrec", "save_mmrec", "load_sequences", "read_sequences", "load_amazon23",
    "load_movielens_csv", "CTRData", "ctr_data",
    "random_split", "leave_one_out", "temporal_split", "cold_mask", "degree_strata", "popularity_quartiles",
    "gini", "cold_start_profile", "ChoiceModel", "PAD", "SequenceData", "sequence_split", "sequence_table", "tie_report",
    # evaluation
    "RankingReport", "DotScorer", "evaluate_ranking", "evaluate_split", "auc", "gauc", "gauc_report", "weighted_auc",
    "auc_by_stratum", "paired_bootstrap_auc", "log_loss",
    "t_halfwidth", "ci_text", "bootstrap_ci", "paired_test", "paired_values", "EarlyStopping",
    "NextItemReport", "chance_next_item", "evaluate_next_item", "rank_metrics", "target_ranks",
    # training
    "TrainConfig", "Trainable", "Batch", "StepOutput", "FitResult",
    # tokenizers
    "QuantizerConfig", "QuantizerOutput", "ResidualQuantizer", "quantize_group", "kmeans", "nearest_code",
    "rotate_onto", "SoftIndex", "soft_index", "SoftCodes",
    "soft_assignment", "sparsity_kl", "diversity_loss", "orthogonal_loss", "weighted_mean",
    "Tokenizer", "TokenizerModule", "RQVAE", "RQVAEConfig", "RQVAEOutput", "forward_group",
    "MMQConfig", "MMQOutput", "MMQTokenizer", "LETTER", "LETTERConfig", "CollaborativeFusion", "FusionConfig", "RQKMeans", "ProductQuantizer", "OPQ",
    "ModalitySeparated", "fuse_modalities", "modality_slices", "standardize",
    "SemanticIds", "add_dedup_level", "reassign_last_level", "sinkhorn", "collision_report",
    "code_usage", "level_entropy", "level_health", "collision_rate", "unique_fraction", "health_summary",
    "attribute_purity", "attribute_scores", "compare_tokenizers", "code_case_study",
    # models
    "Recommender", "Recommendation", "make_model", "model_classes", "register",
    "PopularityRecommender", "RandomRecommender", "OracleRecommender", "GraphModel", "MFBPR", "MFConfig", "LightGCN", "LightGCNConfig",
    "VBPR", "VBPRConfig", "FREEDOM", "FreedomConfig", "MoToRec", "MoToRecConfig", "ABLATIONS", "ablation_config",
    "rarity_weights", "NormalizedAdjacency", "content_graph", "knn_graph", "sample_triplets",
    "NextItemRecommender", "SequenceRanker", "SASRec", "SASRecConfig", "GRU4Rec", "GRU4RecConfig", "SequencePopularity", "NextItemOracle",
    "CodeTrie", "BeamResult", "beam_search", "Generator", "GeneratorConfig", "GENERATOR_SIZES", "generator_config",
    "history_tokens", "ItemCodes", "item_codes", "resolve_collisions", "last_level_cost", "collaborative_embeddings",
    "CTRConfig", "CTRModel", "CTRReport", "SoftCoder", "id_change_report", "matched_dim", "SoftIdGenerator",
    # analysis
    "LabConfig", "lab_config", "StudyConfig", "study_config", "Run", "train_model", "run_table", "summarize",
    "tune_model", "cold_start_metrics", "chance_metrics", "reference_runs", "cold_start_summary", "calibration_row",
    "grid_runs", "ablation_variants", "sensitivity_variants", "paired_gain", "popularity_study", "cold_start_table",
    "load_benchmark", "saved_study",
    "GenerativeStudyConfig", "generative_study_config", "generative_data", "TOKENIZERS", "ItemTokens", "tokenize",
    "NextItemRun", "run_next_item", "train_generator", "next_item_table", "level_accuracy", "invalid_rate",
    "beam_agreement", "generation_table", "exact_ranks", "cold_diagnosis", "MAIN_MODELS", "cemg_ablations", "cemg_sensitivity", "generative_grid",
    "mean_and_ci", "plot_bars_ci", "plot_efficiency", "plot_parameter_panels", "plot_metric_lines",
    "MMQData", "MMQStudyConfig", "mmq_study_config", "mmq_data", "make_tokenizer", "quantization_metrics", "rank",
    "finetune_rank", "retrieve", "finetune_retrieve", "evaluate_method", "feature_modes", "ranking_grid",
    "mmq_grid", "mmq_table",
    "compare_runs", "restricted_report", "evaluation_strata",
    "LiveCurves", "knn_agreement", "plot_cold_start", "plot_code_map", "plot_code_usage", "plot_cold_map", "plot_degree_distribution",
    "plot_embedding_map", "plot_item_grid", "plot_sensitivity", "plot_stratum_metrics", "plot_timing",
    "plot_training_curves", "project_2d",
    # showdown (notebook 05)
    "ShowdownConfig", "attribute_table", "duel_table", "plot_attribute_gain", "plot_duels", "plot_showdown",
    "showdown_config",
    "showdown_seed", "showdown_summary", "showdown_table", "showdown_kind",
    # explorer (notebook 06)
    "Explorer", "ExplorerError", "default_attributes", "ExplorerApp", "Note", "item_panel", "code_panel",
    "user_panel", "explorer_tables_html",
]
