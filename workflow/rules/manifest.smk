# Provenance of a run: results/manifest.json (see dyadflow/core/manifest.py). The job is
# cheap (it hashes the inputs), so it runs on the submit host (localrules). The
# reports take the manifest as an input and show it in their footer.
from dyadflow.core.manifest import environment as _manifest_environment  # standard library only
from dyadflow.microprocess import input_files as _dial_files  # standard library only

# the moment-to-moment (dial) rating files, when the study has them: hashed like inputs
DIAL_FILES = _dial_files(config["microprocess"]["inputs"]) if config.get("microprocess") else []
# the coded files and the frozen blinding keys (docs/coding.md): hashed like inputs
CODED_FILES = [
    {"name": f"coding:{input_name(spec)}", "path": spec["path"], "format": spec["format"]}
    for spec in config["coding"]["inputs"]
] + [
    {"name": f"coding_key:{s['name']}", "path": s["key"], "format": "blinding_key"}
    for s in config["coding"]["selections"]
]

MANIFEST = f"{RESULTS}/manifest.json"


localrules:
    manifest,


rule manifest:
    input:
        inputs=[spec["path"] for spec in INPUTS.values()]
        + [spec["dictionary"] for spec in INPUTS.values() if spec.get("dictionary")]
        + sorted(
            {
                r["lookup"]
                for spec in INPUTS.values()
                for r in (spec.get("ids") or {}).values()
                if r and r.get("lookup")
            }
        )
        + DIAL_FILES
        + [f["path"] for f in CODED_FILES],
        instruments=INSTRUMENT_FILES,
    output:
        manifest=MANIFEST,
    log:
        f"{LOGS}/manifest.log",
    params:
        config=config,
        inputs=[{"name": name, "path": spec["path"], "format": spec["format"]} for name, spec in INPUTS.items()]
        # a REDCap data dictionary changes what is read: hashed like an input
        + [
            {"name": f"{name}_dictionary", "path": spec["dictionary"], "format": "redcap_dictionary"}
            for name, spec in INPUTS.items()
            if spec.get("dictionary")
        ]
        # an ids lookup table (docs, "Linking IDs across sources") changes the IDs read
        + [
            {"name": f"{name}_ids_{field}", "path": rule["lookup"], "format": "id_lookup"}
            for name, spec in INPUTS.items()
            for field, rule in sorted((spec.get("ids") or {}).items())
            if rule and rule.get("lookup")
        ]
        + [{"name": f"dial:{p}", "path": p, "format": "dial"} for p in DIAL_FILES]
        + CODED_FILES,
        # the name each instrument file has in the manifest: built-in ones relative
        # to the workflow, so moving the checkout changes nothing
        instrument_names=[
            (
                _os.path.relpath(p, workflow.basedir)
                if _os.path.abspath(p).startswith(_os.path.join(workflow.basedir, ""))
                else p
            )
            for p in INSTRUMENT_FILES
        ],
        # dyadflow version, package versions and git commit, looked up when the job
        # graph is built (not at parse time): a new commit or package writes a new manifest
        environment=lambda wildcards: _manifest_environment(workflow.basedir),
    run:
        stage("manifest", input=input, output=output, params=params, log=log)
