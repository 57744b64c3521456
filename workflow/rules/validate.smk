rule validate:
    input:
        tables=expand(f"{RESULTS}/ingest/{{name}}.parquet", name=INPUTS),
        metas=expand(f"{RESULTS}/ingest/{{name}}.json", name=INPUTS),
        instruments=INSTRUMENT_FILES,
    output:
        validated=f"{RESULTS}/validated/questionnaires.parquet",
        rejections=report(
            f"{RESULTS}/validation/rejections.csv",
            caption="../report/rejections.rst",
            category="Validation",
        ),
        accounting=report(
            f"{RESULTS}/validation/accounting.csv",
            caption="../report/accounting.rst",
            category="Validation",
        ),
        warnings=f"{RESULTS}/validation/warnings.csv",
        # every consent decision, also on rejected rows (docs, "Consent")
        consent=f"{RESULTS}/validated/consent.parquet",
    log:
        f"{LOGS}/validate.log",
    params:
        policy=config["validation"],
        instruments_dir=config_value("instruments_dir"),
        data_freeze=config["data_freeze"],
        alliance=config["alliance"],
        earliest_date=config["earliest_date"],
    run:
        stage("validate", input=input, output=output, params=params, log=log)
