# Reports (dyadflow/report/): dyad case reports in shards, the cohort and validation
# reports. Standard library only at parse time.
include: "report_helpers.smk"


checkpoint report_plan:
    input:
        scores=rules.score.output.parquet,
        validated=rules.validate.output.validated,
        consent=rules.validate.output.consent,
        rejections=rules.validate.output.rejections,
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
        selection=rules.select.output.index,
        optional=_optional_report_inputs,
    output:
        plan=f"{RESULTS}/reports/plan.json",
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.plan)),
        strategies=SELECTION_NAMES,
        dyads_per_shard=REPORT_CFG["dyads_per_shard"],
        fixed_shards=REPORT_CFG.get("shards"),
    log:
        f"{LOGS}/report/plan.log",
    run:
        stage("report_plan", input=input, output=output, params=params, log=log)


rule report_shard:
    input:
        tables=_shard_tables,
        microprocess=_microprocess_inputs,
        templates=REPORT_TEMPLATES,
    output:
        manifest=f"{RESULTS}/reports/shards/{{shard}}.json",
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
    log:
        f"{LOGS}/report/shard_{{shard}}.log",
    run:
        stage("report_shard", input=input, output=output, params=params, log=log, wildcards=wildcards)


rule report_index:
    input:
        manifests=_shard_manifests,
    output:
        index=f"{RESULTS}/reports/index.csv",
    params:
        reports_dir=lambda wildcards, output: _os.path.dirname(output.index),
    log:
        f"{LOGS}/report/index.log",
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
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.pdf)),
        study=study_name,
        strategies=SELECTION_NAMES,
        config_sha256=REPORT_CONFIG_SHA,
    log:
        f"{LOGS}/report/cohort.log",
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
    params:
        results=lambda wildcards, output: _os.path.dirname(_os.path.dirname(output.pdf)),
        study=study_name,
        config_sha256=REPORT_CONFIG_SHA,
    log:
        f"{LOGS}/report/validation.log",
    run:
        stage("report_validation", input=input, output=output, params=params, log=log)
