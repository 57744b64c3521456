rule select:
    input:
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
    output:
        index=f"{RESULTS}/selection/index.json",
    params:
        strategies=config["selection"],
    log:
        f"{LOGS}/select.log",
    run:
        stage("select", input=input, output=output, params=params, log=log)
