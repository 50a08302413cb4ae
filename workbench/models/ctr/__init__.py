"""CTR ranking with semantic ids (MMQ section 4): the item-side feature modes (:mod:`.features`) and the PPNet and
DNN click models with behavior-aware fine-tuning (:mod:`.model`)."""
from .features import CODE_FEATURES, FEATURES, ItemFeatures, SoftCoder, prefix_ids
from .model import (ARCHS, CTRConfig, CTRModel, CTRReport, Tower, id_change_report, matched_dim,
                    report_table)

__all__ = ["CODE_FEATURES", "FEATURES", "ItemFeatures", "SoftCoder", "prefix_ids", "ARCHS", "CTRConfig", "CTRModel",
           "CTRReport", "Tower", "id_change_report", "matched_dim", "report_table"]
