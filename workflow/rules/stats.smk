rule stats:
    input:
        scores=rules.score.output.parquet,
        reliability=rules.score.output.reliability,
        instruments=INSTRUMENT_FILES,
        # feedback.reference: an earlier run's scores table, a declared input when set
        feedback_reference=(config.get("feedback") or {}).get("reference") or [],
    output:
        sessions=f"{RESULTS}/stats/sessions.parquet",
        dyads=f"{RESULTS}/stats/dyads.parquet",
        dyads_csv=f"{RESULTS}/stats/dyads.csv",
        sudden_gains=f"{RESULTS}/stats/sudden_gains.csv",
        ruptures=f"{RESULTS}/stats/ruptures.csv",
        cohort=f"{RESULTS}/stats/cohort.json",
        feedback=f"{RESULTS}/stats/feedback.parquet",
        feedback_csv=f"{RESULTS}/stats/feedback.csv",
        subscales=f"{RESULTS}/stats/subscales.csv",
    log:
        f"{LOGS}/stats.log",
    params:
        outcome=config_value("outcome"),
        alliance=config["alliance"],
        stats=config["stats"],
        feedback=config["feedback"],
        instruments_dir=config_value("instruments_dir"),
    run:
        stage("stats", input=input, output=output, params=params, log=log)


rule multilevel:
    input:
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
    output:
        multilevel=f"{RESULTS}/stats/multilevel.json",
    log:
        f"{LOGS}/multilevel.log",
    params:
        multilevel=config["stats"]["multilevel"],
        max_gap=config["stats"]["max_gap"],
    run:
        stage("multilevel", input=input, output=output, params=params, log=log)
