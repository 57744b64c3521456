"""dyadflow: psychotherapy process–outcome data, from raw exports to case reports.

The package holds one module (or subpackage) per pipeline stage:
ingest → validate → score → stats → select → report. The Snakemake rules in
``workflow/rules`` are thin wrappers around the ``run`` functions of these modules.
"""

__version__ = "0.1.0"
