rule score:
    input:
        validated=rules.validate.output.validated,
        # the patient's consent decisions: each score row carries its session's text consent
        consent=rules.validate.output.consent,
        instruments=INSTRUMENT_FILES,
    output:
        parquet=f"{RESULTS}/scores/questionnaires.parquet",
        csv=f"{RESULTS}/scores/questionnaires.csv",
        reliability=f"{RESULTS}/scores/reliability.csv",
    log:
        f"{LOGS}/score.log",
    params:
        instruments_dir=config_value("instruments_dir"),
    run:
        stage("score", input=input, output=output, params=params, log=log)
