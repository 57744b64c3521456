"""Running inside a SLURM job.

Snakemake's SLURM executor runs each job as ``srun`` inside an ``sbatch`` allocation;
SLURM then sets ``SLURM_CPUS_PER_TASK`` to the CPUs the job asked for (the rule's
threads) and ``SLURM_JOB_ID`` (``SLURM_ARRAY_JOB_ID``/``SLURM_ARRAY_TASK_ID`` for an
array task). On a node without CPU binding, polars would otherwise start one thread
per core of the whole node and crowd out other users' jobs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping


def slurm_job_id(environ: Mapping[str, str] = os.environ) -> str | None:
    """The SLURM job running this process: ``"123"``, or ``"120_4"`` for an array task."""
    array, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return environ.get("SLURM_JOB_ID") or None


def limit_threads_to_allocation(
    environ: MutableMapping[str, str] = os.environ, imported: Mapping[str, object] = sys.modules
) -> str | None:
    """Set ``POLARS_MAX_THREADS`` to the job's CPUs when running in a SLURM job.

    Returns the thread count set, or None when nothing was changed: outside SLURM,
    when the user set ``POLARS_MAX_THREADS`` already, or when polars is already
    loaded (it reads the variable once, on import).
    """
    cpus = environ.get("SLURM_CPUS_PER_TASK", "")
    if not cpus.isdigit() or int(cpus) < 1 or "POLARS_MAX_THREADS" in environ or "polars" in imported:
        return None
    environ["POLARS_MAX_THREADS"] = cpus
    return cpus
