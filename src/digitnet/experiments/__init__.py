"""Repeated training runs, their statistics and figures (``digitnet experiment``).

``plan.py`` turns CLI flags or an experiment file into entries (one per compared model), the
runner trains every entry K times with the same seeds (skipping finished runs, resuming
interrupted ones), ``stats.py`` computes the tables from the stored runs only, and
``figures.py`` draws the PNGs (matplotlib, imported lazily).
"""

from .plan import Entry, Plan, load_experiment_file, make_plan
from .runner import RunRecord, load_records, run_experiment
from .stats import summarize, write_tables

__all__ = [
    "Entry",
    "Plan",
    "RunRecord",
    "load_experiment_file",
    "load_records",
    "make_plan",
    "run_experiment",
    "summarize",
    "write_tables",
]
