# Reports (dyadflow/report/): dyad case reports in shards, the cohort and validation
# reports. Standard library only at parse time.
include: "report_helpers.smk"


checkpoint report_plan:
    input:
        scores=rules.score.output.parquet,
        consent=rules.validate.output.consent,
        rejections=rules.validate.output.rejections,
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
        feedback=rules.stats.output.feedback,
        subscales=rules.stats.output.subscales,
        selection=rules.select.output.index,
        optional=_optional_report_inputs,
    output:
        plan=f"{RESULTS}/reports/plan.json",
    log:
        f"{LOGS}/report/plan.log",
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.plan)),
        strategies=SELECTION_NAMES,
        dyads_per_shard=REPORT_CFG["dyads_per_shard"],
    run:
        stage("report_plan", input=input, output=output, params=params, log=log)


rule report_shard:
    input:
        tables=_shard_tables,
        microprocess=_microprocess_inputs,
        templates=REPORT_TEMPLATES,
        # feedback.prompts: a study's own support prompts, a declared input when set
        prompts=FEEDBACK_PROMPTS,
    output:
        manifest=f"{RESULTS}/reports/shards/{{shard}}.json",
    log:
        f"{LOGS}/report/shard_{{shard}}.log",
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(_os.path.dirname(output.manifest))),
        shard_dir=lambda wildcards, output: output.manifest[: -len(".json")],
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


# every therapist's caseload page (by_therapist/<T>/_caseload.pdf), one job for all therapists
# after the shards (the by_therapist folders span shards); the index lists its pages
rule report_caseload:
    input:
        dyads=rules.stats.output.dyads,
        sessions=rules.stats.output.sessions,
        feedback=rules.stats.output.feedback,
        scores=rules.score.output.parquet,
        consent=rules.validate.output.consent,
        # read by the caseload pages' tables (tests/test_declared_io.py)
        sudden_gains=rules.stats.output.sudden_gains,
        ruptures=rules.stats.output.ruptures,
        rejections=rules.validate.output.rejections,
        shards=_shard_manifests,
        templates=REPORT_TEMPLATES,
    output:
        manifest=f"{RESULTS}/reports/caseload.json",
    log:
        f"{LOGS}/report/caseload.log",
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.manifest)),
        study=study_name,
        outcome=config_value("outcome"),
        instruments_dir=config_value("instruments_dir"),
        report_cfg=REPORT_CFG,
    run:
        stage("report_caseload", input=input, output=output, params=params, log=log)


rule report_index:
    input:
        manifests=_shard_manifests,
        caseload=rules.report_caseload.output.manifest,
    output:
        index=f"{RESULTS}/reports/index.csv",
    log:
        f"{LOGS}/report/index.log",
    params:
        reports_dir=lambda wildcards, output: _os.path.dirname(output.index),
    run:
        stage("report_index", input=input, output=output, params=params, log=log)


rule report_cohort:
    input:
        dyads=rules.stats.output.dyads,
        sessions=rules.stats.output.sessions,
        selection=rules.select.output.index,
        optional=_optional_report_inputs,
        sections=_cohort_report_inputs,
        templates=REPORT_TEMPLATES,
    output:
        pdf=f"{RESULTS}/reports/cohort.pdf",
    log:
        f"{LOGS}/report/cohort.log",
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.pdf)),
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
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.pdf)),
        study=study_name,
        config_sha256=REPORT_CONFIG_SHA,
    run:
        stage("report_validation", input=input, output=output, params=params, log=log)
