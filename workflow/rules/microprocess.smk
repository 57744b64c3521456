# Moment-to-moment (dial) ratings: validation, congruence, discrepancy, ruptures,
# repairs, peaks and clips (dyadflow/microprocess/). Requested only when the config
# has a `microprocess:` section. The input files are listed with the standard library
# (a folder or a glob), so parsing stays cheap.


from dyadflow.microprocess import input_files as _microprocess_files  # standard library only

MICROPROCESS = f"{RESULTS}/microprocess"
MICROPROCESS_OUTPUTS = (
    [
        f"{MICROPROCESS}/sessions.csv",
        f"{MICROPROCESS}/segments.csv",
        f"{MICROPROCESS}/gaps.csv",
        f"{MICROPROCESS}/rejections.csv",
        f"{MICROPROCESS}/accounting.csv",
        f"{MICROPROCESS}/series.parquet",
    ]
    if config.get("microprocess")
    else []
)


if config.get("microprocess"):

    rule microprocess:
        input:
            ratings=_microprocess_files(config["microprocess"]["inputs"]),
            overrides=microprocess_overrides,
        output:
            sessions=f"{MICROPROCESS}/sessions.csv",
            segments=f"{MICROPROCESS}/segments.csv",
            gaps=f"{MICROPROCESS}/gaps.csv",
            rejections=f"{MICROPROCESS}/rejections.csv",
            accounting=f"{MICROPROCESS}/accounting.csv",
            series=f"{MICROPROCESS}/series.parquet",
        log:
            f"{LOGS}/microprocess.log",
        params:
            inputs=config["microprocess"]["inputs"],
            settings={k: v for k, v in config["microprocess"].items() if k != "inputs"},
        run:
            stage("microprocess", input=input, output=output, params=params, log=log)
