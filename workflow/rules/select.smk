# Session selection for qualitative study (dyadflow/select/): one job per configured
# strategy, then the index. Standard library only at parse time.
SELECTIONS = {spec["name"]: spec for spec in config["selection"]}
SELECTION_FILES = ("{name}.csv", "{name}_summary.json", "{name}_blinded.csv", "{name}_key.csv")


rule select_strategy:
    input:
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
        ruptures=rules.stats.output.ruptures,
        instruments=INSTRUMENT_FILES,
    output:
        selection=f"{RESULTS}/selection/{{name}}.csv",
        summary=f"{RESULTS}/selection/{{name}}_summary.json",
        blinded=f"{RESULTS}/selection/{{name}}_blinded.csv",
        key=f"{RESULTS}/selection/{{name}}_key.csv",
    log:
        f"{LOGS}/select/{{name}}.log",
    wildcard_constraints:
        # only the configured names: hl_key.csv is the key of hl, not a selection named hl_key
        name="|".join(SELECTIONS) or "(?!)",
    params:
        spec=lambda wildcards: SELECTIONS[wildcards.name],
        outcome=config_value("outcome"),
        alliance=config["alliance"],
        instruments_dir=config_value("instruments_dir"),
        stats=config["stats"],
    run:
        stage("select_strategy", input=input, output=output, params=params, log=log)


rule select:
    input:
        selections=expand(f"{RESULTS}/selection/{{name}}.csv", name=SELECTIONS),
        sessions=rules.stats.output.sessions,  # the stage after stats, also with no strategy configured
        dyads=rules.stats.output.dyads,
    output:
        index=f"{RESULTS}/selection/index.json",
    log:
        f"{LOGS}/select.log",
    params:
        strategies=config["selection"],
    run:
        stage("select", input=input, output=output, params=params, log=log)
