"""PDF reports: dyad case reports, the cohort report and the validation report.

Modules: ``render`` (Jinja2 + WeasyPrint, safe fetcher, reproducible bytes),
``charts`` (matplotlib PNG charts), ``tables`` (reading the stats/selection/validation
tables with the contract columns), ``dyad`` (case-report contexts and audiences),
``shards`` (sharded, incremental rendering), ``cohort`` (cohort and validation reports).
"""

from dyadflow.report.render import (  # noqa: F401
    epoch_of,
    make_fetcher,
    render_pdf,
    shard_of,
    stable_hash,
    template_env,
)
