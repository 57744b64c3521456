# The coding stage (dyadflow/coding/, docs/coding.md): coders' ratings of the blinded
# sessions, after selection. Runs when coding.inputs lists coded files; nothing before it
# reads its outputs, so the workflow has no cycle. Standard library only at parse time.
CODING = config["coding"]
CODING_SELECTIONS = [s["name"] for s in CODING["selections"]]
CODING_UNBLINDED = [s["name"] for s in CODING["selections"] if s.get("unblind")]
CODING_OUTPUTS = (
    [
        f"{RESULTS}/coding/ratings.parquet",
        f"{RESULTS}/coding/accounting.csv",
        f"{RESULTS}/coding/rejections.csv",
        f"{RESULTS}/coding/warnings.csv",
        f"{RESULTS}/coding/agreement.csv",
        f"{RESULTS}/coding/consensus.csv",
        f"{RESULTS}/coding/to_discuss.csv",
        f"{RESULTS}/coding/comparison.csv",
    ]
    if CODING["inputs"]
    else []
)


# the coded files (and the lookups of their ID rules)
CODING_INPUT_FILES = sorted(
    {spec["path"] for spec in CODING["inputs"]}
    | {spec["dictionary"] for spec in CODING["inputs"] if spec.get("dictionary")}
    | {r["lookup"] for spec in CODING["inputs"] for r in (spec.get("ids") or {}).values() if r and r.get("lookup")}
)


rule coding_ratings:
    input:
        coded=CODING_INPUT_FILES,
        frozen_keys=[s["key"] for s in CODING["selections"]],
        # the current keys, to report codes whose entry changed since the frozen copy
        current_keys=expand(
            f"{RESULTS}/selection/{{name}}_key.csv", name=[n for n in CODING_SELECTIONS if n in SELECTIONS]
        ),
        instruments=INSTRUMENT_FILES,
    output:
        ratings=f"{RESULTS}/coding/ratings.parquet",
        accounting=f"{RESULTS}/coding/accounting.csv",
        rejections=f"{RESULTS}/coding/rejections.csv",
        warnings=f"{RESULTS}/coding/warnings.csv",
    log:
        f"{LOGS}/coding/ratings.log",
    params:
        coding=CODING,
        policy=config["validation"],
        instruments_dir=config_value("instruments_dir"),
    run:
        stage("coding_ratings", input=input, output=output, params=params, log=log)


rule coding_agreement:
    input:
        ratings=rules.coding_ratings.output.ratings,
        instruments=INSTRUMENT_FILES,
    output:
        agreement=f"{RESULTS}/coding/agreement.csv",
        consensus=f"{RESULTS}/coding/consensus.csv",
        to_discuss=f"{RESULTS}/coding/to_discuss.csv",
    log:
        f"{LOGS}/coding/agreement.log",
    params:
        instruments_dir=config_value("instruments_dir"),
        discuss_distance=CODING["discuss_distance"],
    run:
        stage("coding_agreement", input=input, output=output, params=params, log=log)


rule coding_comparison:
    input:
        consensus=rules.coding_agreement.output.consensus,
        # read only for the unblinded selections
        frozen_keys=[s["key"] for s in CODING["selections"] if s.get("unblind")],
        dyads=rules.stats.output.dyads,
    output:
        comparison=f"{RESULTS}/coding/comparison.csv",
    log:
        f"{LOGS}/coding/comparison.log",
    params:
        selections=CODING["selections"],
    run:
        stage("coding_comparison", input=input, output=output, params=params, log=log)
