rule stats:
    input:
        scores=rules.score.output.parquet,
    output:
        sessions=f"{RESULTS}/stats/sessions.parquet",
        dyads=f"{RESULTS}/stats/dyads.parquet",
        dyads_csv=f"{RESULTS}/stats/dyads.csv",
    params:
        outcome=config["outcome"],
        alliance=config["alliance"],
    log:
        f"{LOGS}/stats.log",
    run:
        stage("stats", input=input, output=output, params=params, log=log)
