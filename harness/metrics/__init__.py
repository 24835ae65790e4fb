"""Statistics of prelabel: pure functions from label arrays to numbers (statistics.md).

Labels are integer codes 0..K-1 (``n_classes=K``); -1 = missing rating or failed
prediction. Ratings matrices are (n_items, n_annotators).
"""

from .accuracy import (
    ClassificationMetrics,
    ClassScores,
    accuracy_from_confusion,
    classification_metrics,
    confusion,
    macro_f1_from_confusion,
    metrics_from_confusion,
    validate_codes,
)
from .agreement import (
    CeilingRow,
    HumanCeiling,
    PairKappa,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    human_ceiling,
    item_label_counts,
    kappa_from_confusion,
    krippendorff_alpha,
    label_distribution,
    majority_vote,
    median_label,
    pairwise_kappas,
    reliability_matrix,
    soft_labels,
)
from .calibration import Bin, auroc, brier_top_label, ece, log_loss_top_label, reliability_bins
from .ece_intervals import ece_ci, ece_ci_many
from .intervals import (
    Interval,
    accuracy_ci,
    bootstrap_items,
    bootstrap_table_stat,
    kappa_ci,
    macro_f1_ci,
    paired_difference_ci,
)

__all__ = [
    "Bin",
    "CeilingRow",
    "ClassScores",
    "ClassificationMetrics",
    "HumanCeiling",
    "Interval",
    "PairKappa",
    "accuracy_ci",
    "accuracy_from_confusion",
    "auroc",
    "bootstrap_items",
    "bootstrap_table_stat",
    "brier_top_label",
    "classification_metrics",
    "cohen_kappa",
    "confusion",
    "ece",
    "ece_ci",
    "ece_ci_many",
    "fleiss_kappa",
    "gwet_ac1",
    "human_ceiling",
    "item_label_counts",
    "kappa_ci",
    "kappa_from_confusion",
    "krippendorff_alpha",
    "label_distribution",
    "log_loss_top_label",
    "macro_f1_ci",
    "macro_f1_from_confusion",
    "majority_vote",
    "median_label",
    "metrics_from_confusion",
    "paired_difference_ci",
    "pairwise_kappas",
    "reliability_bins",
    "reliability_matrix",
    "soft_labels",
    "validate_codes",
]

# Ordinal scales and pairwise preference. pairwise.agreement is re-exported as
# pairwise_agreement: the bare name would shadow the `agreement` submodule here.
from .ordinal import (
    ORDINAL_METRICS,
    OrdinalCeiling,
    OrdinalCeilingRow,
    OrdinalMetrics,
    expected_level,
    ordinal_ci,
    ordinal_from_confusion,
    ordinal_human_ceiling,
    ordinal_metrics,
    top_level_probability,
)
from .pairwise import (
    PAIRWISE_METRICS,
    combine_orders,
    first_position_rate,
    length_bias,
    pairwise_ci,
    position_consistency,
    tie_rate,
    unswap,
)
from .pairwise import agreement as pairwise_agreement

__all__ += [
    "ORDINAL_METRICS",
    "PAIRWISE_METRICS",
    "OrdinalCeiling",
    "OrdinalCeilingRow",
    "OrdinalMetrics",
    "combine_orders",
    "expected_level",
    "first_position_rate",
    "length_bias",
    "ordinal_ci",
    "ordinal_from_confusion",
    "ordinal_human_ceiling",
    "ordinal_metrics",
    "pairwise_agreement",
    "pairwise_ci",
    "position_consistency",
    "tie_rate",
    "top_level_probability",
    "unswap",
]

# Label sets (multi-label) and rankings of N candidates.
from .multilabel import (  # noqa: E402
    MULTILABEL_METRICS,
    MultilabelMetrics,
    multilabel_alpha_per_label,
    multilabel_ci,
    multilabel_metrics,
    multilabel_reference,
)
from .ranking import (  # noqa: E402
    RANKING_METRICS,
    RankingCeiling,
    RankingCeilingRow,
    RankingMetrics,
    borda_reference,
    borda_scores,
    kendall_tau,
    ranking_against_annotators,
    ranking_ci,
    ranking_human_ceiling,
    ranking_metrics,
    spearman_rho,
)

__all__ += [
    "MULTILABEL_METRICS",
    "RANKING_METRICS",
    "MultilabelMetrics",
    "RankingCeiling",
    "RankingCeilingRow",
    "RankingMetrics",
    "borda_reference",
    "borda_scores",
    "kendall_tau",
    "multilabel_alpha_per_label",
    "multilabel_ci",
    "multilabel_metrics",
    "multilabel_reference",
    "ranking_against_annotators",
    "ranking_ci",
    "ranking_human_ceiling",
    "ranking_metrics",
    "spearman_rho",
]
