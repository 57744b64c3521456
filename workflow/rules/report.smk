# Reports (dyadflow/report/): dyad case reports in shards, the cohort and validation
# reports. Standard library only at parse time.
include: "report_helpers.smk"


# The report stages read and write only what their rules declare (tests/test_declared_io.py);
# docs/reports.md, "Scale and incrementality", says what reruns when one dyad changes.
checkpoint report_plan:
    input:
        **REPORT_TABLES,
        selections=SELECTION_CSVS,
    output:
        plan=f"{RESULTS}/reports/plan.json",
        # <k>/<table>.parquet for every shard k, rewritten whole; a shard whose bytes did not
        # change is not run again (Snakemake compares the checksum recorded at its last run)
        tables=directory(f"{RESULTS}/reports/shards/tables"),
    log:
        f"{LOGS}/report/plan.log",
    params:
        strategies=SELECTION_NAMES,
        dyads_per_shard=REPORT_CFG["dyads_per_shard"],
    run:
        stage("report_plan", input=input, output=output, params=params, log=log)


rule report_shard:
    input:
        unpack(_shard_tables),
        unpack(_microprocess_inputs),
        templates=REPORT_TEMPLATES,
        # feedback.prompts: a study's own support prompts, a declared input when set
        prompts=FEEDBACK_PROMPTS,
    output:
        manifest=f"{RESULTS}/reports/shards/{{shard}}.json",
        # dyads/<D>.pdf and by_therapist/<T>/<D>.pdf of the shard's dyads (published by report_index)
        pdf=directory(f"{RESULTS}/reports/shards/pdf/{{shard}}"),
    log:
        f"{LOGS}/report/shard_{{shard}}.log",
    params:
        study=study_name,
        audience=REPORT_CFG["audience"],
        max_note_chars=REPORT_CFG["max_note_chars"],
        outcome=config_value("outcome"),
        alliance=config["alliance"],
        config_sha256=REPORT_CONFIG_SHA,
        instruments_dir=config_value("instruments_dir"),
        config_flags={"microprocess": bool(config.get("microprocess"))},
        strategies=SELECTION_NAMES,
        report_cfg=REPORT_CFG,
    run:
        stage("report_shard", input=input, output=output, params=params, log=log, wildcards=wildcards)


# every therapist's caseload page, one job for all therapists (a small table); report_index
# publishes the pages as by_therapist/<T>/_caseload.pdf
rule report_caseload:
    input:
        **REPORT_TABLES,
        templates=REPORT_TEMPLATES,
    output:
        manifest=f"{RESULTS}/reports/caseload.json",
        pages=directory(f"{RESULTS}/reports/caseload"),
    log:
        f"{LOGS}/report/caseload.log",
    params:
        study=study_name,
        outcome=config_value("outcome"),
        alliance=config["alliance"],
        instruments_dir=config_value("instruments_dir"),
        report_cfg=REPORT_CFG,
    run:
        stage("report_caseload", input=input, output=output, params=params, log=log)


# publishes the shards' PDFs and the caseload pages (hard links) in the public folders
# dyads/ and by_therapist/ (which span shards), and lists them in index.csv
rule report_index:
    input:
        manifests=_shard_manifests,
        pdfs=_shard_pdf_dirs,
        caseload=rules.report_caseload.output.manifest,
        caseload_pages=rules.report_caseload.output.pages,
    output:
        index=f"{RESULTS}/reports/index.csv",
        dyads=directory(f"{RESULTS}/reports/dyads"),
        by_therapist=directory(f"{RESULTS}/reports/by_therapist"),
    log:
        f"{LOGS}/report/index.log",
    run:
        stage("report_index", input=input, output=output, params=params, log=log)


rule report_cohort:
    input:
        unpack(_cohort_report_inputs),
        dyads=rules.stats.output.dyads,
        sessions=rules.stats.output.sessions,
        selection=rules.select.output.index,
        summaries=SELECTION_SUMMARIES,
        templates=REPORT_TEMPLATES,
    output:
        pdf=f"{RESULTS}/reports/cohort.pdf",
    log:
        f"{LOGS}/report/cohort.log",
    params:
        study=study_name,
        strategies=SELECTION_NAMES,
        config_sha256=REPORT_CONFIG_SHA,
    run:
        stage("report_cohort", input=input, output=output, params=params, log=log)


rule report_validation:
    input:
        accounting=rules.validate.output.accounting,
        rejections=rules.validate.output.rejections,
        warnings=rules.validate.output.warnings,
        sessions=rules.stats.output.sessions,
        templates=REPORT_TEMPLATES,
    output:
        pdf=f"{RESULTS}/reports/validation.pdf",
    log:
        f"{LOGS}/report/validation.log",
    params:
        study=study_name,
        config_sha256=REPORT_CONFIG_SHA,
    run:
        stage("report_validation", input=input, output=output, params=params, log=log)
