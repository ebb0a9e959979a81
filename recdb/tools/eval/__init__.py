"""`recdb eval`: offline ranking quality of the product itself, through rerank() in SQL.

MovieLens-100K, chronological leave-one-out per user, full ranking over the catalogue with
the user's history excluded, HR/NDCG/MRR@10 and catalogue coverage@10 (DESIGN.md, Quality),
in a fresh database of the run's own. Everything is deterministic (popularity decays from
the newest event, not the clock), so two runs give the same numbers.

Modules: ``knobs`` (presets, setting and reading them), ``protocol`` (split, user sample,
phases), ``scoring`` (rerank() per user, cold start, baselines), ``run`` (the run, the
sequence model trained inside it), ``sasrec_ce`` (the SASRec+ baseline, trained in the run
when asked), ``cold`` (`--cold-items`: new items without events),
``report`` (results, tables, targets, plot), ``markdown`` (a saved run as the README's
tables), ``metrics`` (offline ranking metrics and Python
baselines), ``cli`` (`recdb eval`).
"""

from recdb.tools.eval import metrics
from recdb.tools.eval.cold import DEFAULT_FRACTION, cold_database, run_cold_items
from recdb.tools.eval.knobs import (
    DEFAULT_PRESET,
    KNOB_PRESETS,
    apply_knobs,
    effective_knobs,
    encoder_settings,
    resolve_knobs,
)
from recdb.tools.eval.protocol import K
from recdb.tools.eval.report import format_cold_table, format_table, write_plot
from recdb.tools.eval.run import DEFAULT_DATABASE, default_encoders, fresh_database, run_evaluation
from recdb.tools.eval.scoring import COLD_START_USER, rerank_rankings

__all__ = [
    "COLD_START_USER",
    "DEFAULT_DATABASE",
    "DEFAULT_FRACTION",
    "DEFAULT_PRESET",
    "KNOB_PRESETS",
    "K",
    "apply_knobs",
    "cold_database",
    "default_encoders",
    "effective_knobs",
    "encoder_settings",
    "format_cold_table",
    "format_table",
    "fresh_database",
    "metrics",
    "rerank_rankings",
    "resolve_knobs",
    "run_cold_items",
    "run_evaluation",
    "write_plot",
]
