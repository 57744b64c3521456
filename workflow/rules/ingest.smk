rule ingest:
    input:
        input_path,
    output:
        table=f"{RESULTS}/ingest/{{name}}.parquet",
        meta=f"{RESULTS}/ingest/{{name}}.json",
    params:
        spec=input_spec,
        policy=config["validation"],
    log:
        f"{LOGS}/ingest/{{name}}.log",
    run:
        stage("ingest", output=output, params=params, log=log)
