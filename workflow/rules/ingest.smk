rule ingest:
    input:
        input_path,
    output:
        table=f"{RESULTS}/ingest/{{name}}.parquet",
        meta=f"{RESULTS}/ingest/{{name}}.json",
    log:
        f"{LOGS}/ingest/{{name}}.log",
    params:
        spec=input_spec,
        policy=config["validation"],
    run:
        stage("ingest", input=input, output=output, params=params, log=log)
