# dyadflow: psychotherapy process–outcome data, from raw exports to case reports.
#
#   snakemake --cores N --configfile study.yaml
#
# Stages: ingest → validate → score → stats → select → report. Rules are thin; the
# logic lives in the dyadflow package. Parsing this file stays cheap (no polars, no
# data reads), because every cluster job parses it again.

from snakemake.utils import min_version

min_version("9.27")


# Without --configfile, run the bundled demo study. A study's own config file is
# used alone: nothing of the demo's configuration leaks into it.
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/microprocess.smk"
include: "workflow/rules/charts.smk"
include: "workflow/rules/coding.smk"


# snakemake --report results/report.html: the validation tables and cohort charts
report: "workflow/report/workflow.rst"


# Cheap jobs run on the submit host instead of waiting in a cluster queue
# (manifest.smk adds its own rule).
localrules:
    all,
    report_index,


rule all:
    default_target: True
    input:
        final_outputs(),
        MANIFEST,
        MICROPROCESS_OUTPUTS,
        CHARTS.values(),
        CODING_OUTPUTS,
