# Charts for Snakemake's HTML report (snakemake --report results/report.html, docs
# "Snakemake's report"). Cheap: reads the validation and cohort outputs, writes four PNGs.
CHARTS = {
    "validation_summary": f"{RESULTS}/charts/validation_summary.png",
    "change_by_arm": f"{RESULTS}/charts/cohort_change_by_arm.png",
    "completeness": f"{RESULTS}/charts/cohort_completeness.png",
    "alliance_outcome": f"{RESULTS}/charts/cohort_alliance_outcome.png",
}


# a few seconds of matplotlib: runs on the submit host, never waits in a cluster queue
localrules:
    charts,


rule charts:
    input:
        rejections=rules.validate.output.rejections,
        cohort=rules.stats.output.cohort,
        sessions=rules.stats.output.sessions,
    output:
        validation_summary=report(
            CHARTS["validation_summary"],
            caption="../report/validation_summary.rst",
            category="Validation",
        ),
        change_by_arm=report(CHARTS["change_by_arm"], caption="../report/change_by_arm.rst", category="Cohort"),
        completeness=report(CHARTS["completeness"], caption="../report/completeness.rst", category="Cohort"),
        alliance_outcome=report(
            CHARTS["alliance_outcome"],
            caption="../report/alliance_outcome.rst",
            category="Cohort",
        ),
    log:
        f"{LOGS}/charts.log",
    run:
        stage("charts", input=input, output=output, log=log)
