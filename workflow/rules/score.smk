rule score:
    input:
        validated=rules.validate.output.validated,
        instruments=INSTRUMENT_FILES,
    output:
        parquet=f"{RESULTS}/scores/questionnaires.parquet",
        csv=f"{RESULTS}/scores/questionnaires.csv",
    params:
        instruments_dir=config_value("instruments_dir"),
    log:
        f"{LOGS}/score.log",
    run:
        stage("score", input=input, output=output, params=params, log=log)
