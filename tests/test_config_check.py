"""The start-up config check (issue 14, point 16): every mistake in one line, before any data is read."""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import REPO

from dyadflow.core import config as config_check

SCHEMA = REPO / "dyadflow" / "schemas" / "config.schema.yaml"
GOOD = """\
study: {name: "Small synthetic study"}
inputs:
  - path: data/questionnaires.csv
    format: canonical_csv
validation: quarantine
outcome: bdi_ii
alliance: {patient: wai_sr, therapist: wai_s}
"""
REDCAP = """\
  - path: data/redcap.csv
    format: redcap
    events: {pattern: "session_{n}_arm_1"}
    instruments:
      wai_sr: {form: wai_sr, items: "wai_sr_{n:02d}", rater: patient}
      bdi_ii: {form: bdi, items: "bdi_{n:02d}", rater: patient}
"""


def check(text: str) -> list[str]:
    return config_check.check(yaml.safe_load(text), SCHEMA, REPO)


def test_a_good_config_and_the_demo_config_have_no_mistakes():
    assert check(GOOD) == []
    assert check((REPO / "config" / "config.yaml").read_text()) == []


def test_a_top_level_typo():
    assert check(GOOD.replace("validation: quarantine", "validaton: quarantine")) == [
        "validaton: unknown key; did you mean 'validation'?"
    ]


def test_a_nested_typo_is_one_line_not_the_schema():
    assert check(GOOD + "report: {audiense: clinician}\n") == ["report.audiense: unknown key; did you mean 'audience'?"]
    assert check(
        GOOD.replace("    format: canonical_csv\n", "    format: canonical_csv\n    colums: {dyad_id: Dyad}\n")
    ) == ["inputs[0].colums: unknown key; did you mean 'columns'?"]
    # inside a selection strategy's own keys (the if/then of the schema)
    assert check(GOOD + "selection: [{name: hl, strategy: high_low_alliance, alfa: 0.1}]\n") == [
        "selection[0].alfa: unknown key; did you mean 'alpha'?"
    ]


def test_an_unknown_key_with_nothing_close_lists_the_allowed_keys():
    assert check(GOOD + "zzz: 1\n") == [
        "zzz: unknown key (known: alliance, coding, data_freeze, earliest_date, feedback, inputs, instruments_dir, microprocess, outcome, report, "
        "selection, stats, study, validation)"
    ]


def test_wrong_values_and_types():
    assert check(GOOD.replace("validation: quarantine", "validation: quarantin")) == [
        "validation: 'quarantin' is not one of: quarantine, strict; did you mean 'quarantine'?"
    ]
    assert check(GOOD + "report: {dyads_per_shard: many}\n") == [
        "report.dyads_per_shard: must be a whole number, not a string ('many')"
    ]
    assert check("study: {name: x}\n") == ["(the whole config): the key 'inputs' is missing"]


def test_a_wrong_redcap_instrument_key():
    text = GOOD.replace("inputs:\n", "inputs:\n" + REDCAP.replace("wai_sr: {form", "wai_s_r: {form"))
    assert check(text) == [
        "inputs[0].instruments.wai_s_r: 'wai_s_r' is not an instrument in the registry; did you mean 'wai_sr'?"
    ]
    assert check(GOOD.replace("inputs:\n", "inputs:\n" + REDCAP)) == []


def test_an_unknown_outcome_and_alliance_instrument():
    assert check(GOOD.replace("outcome: bdi_ii", "outcome: bdi")) == [
        "outcome: 'bdi' is not an instrument in the registry; did you mean 'bdi_ii'?"
    ]
    assert check(GOOD.replace("outcome: bdi_ii", "outcome: hamd")) == [
        "outcome: 'hamd' is not an instrument in the registry (known: bdi_ii, oq_45, phq_9, wai_s, wai_sr, wai_sr_7)"
    ]
    assert check(GOOD.replace("therapist: wai_s}", "therapist: wai_t}")) == [
        "alliance.therapist: 'wai_t' is not an instrument in the registry; did you mean 'wai_s'?"
    ]


def test_a_study_instrument_is_known(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "instruments").mkdir()
    (tmp_path / "instruments" / "hamd.yaml").write_text("key: hamd\n")
    assert check(GOOD.replace("outcome: bdi_ii", "outcome: hamd") + "instruments_dir: instruments\n") == []
    assert check(GOOD + "instruments_dir: instrumnets\n") == [
        "instruments_dir: the folder 'instrumnets' does not exist"
    ]


def test_placeholder_constants_and_unknown_instrument_constants():
    text = GOOD.replace(
        "    format: canonical_csv\n",
        "    format: canonical_csv\n    constants: {instrument: oq45, therapist_id: '?'}\n",
    )
    assert check(text) == [
        "inputs[0].constants.therapist_id: '?' is a placeholder left from `dyadflow inspect`: give the value, "
        "or map a column under 'columns'",
        "inputs[0].constants.instrument: 'oq45' is not an instrument in the registry; did you mean 'oq_45'?",
    ]
    redcap = REDCAP.replace("rater: patient}\n      bdi_ii", "rater: patient, constants: {arm: '?'}}\n      bdi_ii")
    assert check(GOOD.replace("inputs:\n", "inputs:\n" + redcap)) == [
        "inputs[0].instruments.wai_sr.constants.arm: '?' is a placeholder left from `dyadflow inspect`: give the value, "
        "or map a column under 'columns'"
    ]


def test_inspect_output_with_its_placeholders_is_refused(tmp_path):
    from dyadflow.tools import inspect_export as inspect

    path = str(tmp_path / "q.csv")
    (tmp_path / "q.csv").write_text("Dyad,Session,item_01,item_02,item_03\nD1,1,3,4,2\n", encoding="utf-8")
    spec, _, _ = inspect.suggest(path, inspect._read(path))  # what `dyadflow inspect` prints to paste
    assert check(yaml.safe_dump({"study": {"name": "x"}, "inputs": [spec]}, sort_keys=False)) == [
        f"inputs[0].constants.{field}: '?' is a placeholder left from `dyadflow inspect`: give the value, "
        "or map a column under 'columns'"
        for field in ("patient_id", "therapist_id", "date", "instrument")
    ]


def _snakemake_dry_run(tmp_path, config_text):
    (tmp_path / "study.yaml").write_text(config_text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "study.yaml"),
            "-n",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_snakemake_stops_at_start_up_with_one_line_per_mistake(tmp_path):
    text = GOOD.replace("validation: quarantine", "validaton: quarantine") + "report: {audiense: clinician}\n"
    proc = _snakemake_dry_run(tmp_path, text)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("Using workflow specific profile")]
    assert lines == [
        "dyadflow config: validaton: unknown key; did you mean 'validation'?",
        "dyadflow config: report.audiense: unknown key; did you mean 'audience'?",
        f"dyadflow config: 2 mistake(s) in {tmp_path / 'study.yaml'}; nothing was read or run.",
    ]
    assert proc.stdout == ""
    assert not (tmp_path / "results").exists()
