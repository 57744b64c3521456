rule report_shard:
    input:
        scores=rules.score.output.parquet,
        dyads=rules.stats.output.dyads,
        selection=rules.select.output.index,
        # every file under reports/ (templates, partials, assets); folders are not inputs
        templates=sorted(
            p
            for p in _glob.glob(_os.path.join(workflow.basedir, "reports", "**", "*"), recursive=True)
            if _os.path.isfile(p)
        ),
        provenance=MANIFEST,  # results/manifest.json, shown in the footer (manifest.smk)
    output:
        manifest=f"{RESULTS}/reports/shards/{{shard}}.json",
    params:
        study=config["study"]["name"],
        n_shards=len(REPORT_SHARDS),
        out_dir=f"{RESULTS}/reports/dyads",
    log:
        f"{LOGS}/report/shard_{{shard}}.log",
    run:
        stage("report_shard", input=input, output=output, params=params, log=log, wildcards=wildcards)


rule report_index:
    input:
        manifests=expand(f"{RESULTS}/reports/shards/{{shard}}.json", shard=REPORT_SHARDS),
    output:
        index=f"{RESULTS}/reports/index.csv",
    params:
        out_dir=f"{RESULTS}/reports/dyads",
    log:
        f"{LOGS}/report/index.log",
    run:
        stage("report_index", input=input, output=output, params=params, log=log)
