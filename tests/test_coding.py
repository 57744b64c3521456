"""Issue 19.2-5: the coding stage. Coded rows name sessions by selection and code, are
resolved through the frozen key, judged by the validation rules and accounted exactly;
agreement, consensus and the sessions to discuss are reported by code only; only an
unblinded selection is compared by group, with patient-clustered standard errors."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from dyadflow.coding import comparison, pipeline
from dyadflow.core.registry import load_registry

DEMO_INSTRUMENTS = Path(__file__).resolve().parent.parent / "data" / "demo" / "instruments"

KEY = """code,dyad_id,session,group,rank,reason
A,DY01,3,high,1,x
B,DY01,5,low,1,x
C,DY02,4,high,2,x
D,DY03,2,low,2,x
"""
CODED = """selection,code,coder_id,instrument,item_01,item_02,item_03
hl,A,C1,rupture_markers,1,0,3
hl,A,C2,rupture_markers,2,0,3
hl,B,C1,rupture_markers,4,1,0
hl,B,C2,rupture_markers,3,2,1
hl,C,C1,rupture_markers,0,0,2
hl,C,C2,rupture_markers,0,1,2
hl,D,C1,rupture_markers,5,3,0
hl,D,C2,rupture_markers,4,2,0
hl,E,C1,rupture_markers,1,1,1
hl,A,,rupture_markers,1,1,1
xx,A,C1,rupture_markers,1,1,1
hl,A,C1,rupture_type,withdrawal,,
hl,A,C2,rupture_type,none,,
hl,B,C1,rupture_type,withdrawal,,
hl,B,C2,rupture_type,withdrawal,,
hl,C,C1,rupture_type,none,,
hl,C,C2,rupture_type,none,,
hl,D,C1,rupture_type,confrontation,,
hl,D,C2,rupture_type,confrontation,,
"""


@pytest.fixture(scope="module")
def coded_registry():
    return load_registry(DEMO_INSTRUMENTS)


def study(
    tmp_path: Path, coded: str = CODED, key: str = KEY, unblind: bool = False, current: str | None = None
) -> dict:
    (tmp_path / "hl_key_frozen.csv").write_text(key, encoding="utf-8")
    (tmp_path / "coded.csv").write_text(coded, encoding="utf-8")
    if current is not None:
        (tmp_path / "selection").mkdir(exist_ok=True)
        (tmp_path / "selection" / "hl_key.csv").write_text(current, encoding="utf-8")
    return {
        "inputs": [{"path": str(tmp_path / "coded.csv"), "format": "canonical_csv"}],
        "selections": [{"name": "hl", "key": str(tmp_path / "hl_key_frozen.csv"), "unblind": unblind}],
    }


def run_all(tmp_path, coding, registry, distance=1.0, current=False):
    out = {
        k: str(tmp_path / f"{k}.{'parquet' if k == 'ratings' else 'csv'}")
        for k in ("ratings", "accounting", "rejections", "warnings")
    }
    res = pipeline.run_ratings(
        coding, registry, "quarantine", {"hl": str(tmp_path / "selection" / "hl_key.csv")} if current else None, out
    )
    agree = {k: str(tmp_path / f"{k}.csv") for k in ("agreement", "consensus", "to_discuss")}
    pipeline.run_agreement(out["ratings"], registry, distance, agree)
    pl.DataFrame(
        {
            "dyad_id": ["DY01", "DY02", "DY03"],
            "patient_id": ["PA01", "PA02", "PA03"],
            "therapist_id": ["TH01", "TH01", "TH02"],
        }
    ).write_parquet(tmp_path / "dyads.parquet")
    pipeline.run_comparison(
        agree["consensus"], coding["selections"], str(tmp_path / "dyads.parquet"), str(tmp_path / "comparison.csv")
    )
    return res


def test_codes_not_in_the_frozen_key_are_rejected_and_accounting_is_exact(tmp_path, coded_registry):
    res = run_all(tmp_path, study(tmp_path), coded_registry)
    rej = pl.read_csv(tmp_path / "rejections.csv")
    assert rej.select("source_line", "column", "value", "rule", "message", "selection", "code").rows() == [
        (
            10,
            "code",
            "E",
            "code_unknown",
            "code 'E' is not in the frozen key of selection 'hl' (the codes handed to the coders)",
            "hl",
            "E",
        ),
        (11, "coder_id", None, "coder_missing", "an observer's rating needs its coder: coder_id is empty", "hl", "A"),
        (12, "selection", "xx", "code_unknown", "selection 'xx' has no frozen key (coding.selections: hl)", "xx", "A"),
    ]
    acc = pl.read_csv(tmp_path / "accounting.csv").row(0, named=True)
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"]) == (19, 16, 3)
    assert res.ratings.height == 16


def test_one_coder_rating_a_session_twice_differently_is_a_conflict_named_by_code(tmp_path, coded_registry):
    coded = CODED + "hl,C,C2,rupture_markers,5,5,5\n"
    run_all(tmp_path, study(tmp_path, coded), coded_registry)
    rej = pl.read_csv(tmp_path / "rejections.csv").filter(pl.col("rule") == "duplicate_conflict")
    assert rej.select("source_line", "selection", "code").rows() == [(7, "hl", "C"), (21, "hl", "C")]
    assert rej.item(0, "message") == (
        "2 rows for selection hl, code C, observer rupture_markers, coder C2 differ (line 7, line 21); all are rejected"
    )


def test_a_code_whose_key_entry_changed_is_reported_not_remapped(tmp_path, coded_registry):
    rerun = KEY.replace("A,DY01,3,high", "A,DY09,7,high").replace("D,DY03,2,low,2,x\n", "") + "F,DY04,1,low,3,x\n"
    res = run_all(tmp_path, study(tmp_path, current=rerun), coded_registry, current=True)
    warnings = pl.read_csv(tmp_path / "warnings.csv")
    assert warnings.select("selection", "code").rows() == [("hl", "A"), ("hl", "D"), ("hl", "F")]
    assert warnings.item(0, "warning").startswith(
        "the code now stands for another session: a rerun of the selection re-lettered the codes"
    )
    assert warnings.item(1, "warning").startswith("the code is no longer in the current key")
    assert warnings.item(2, "warning").startswith("the current key has this code but the frozen key does not")
    assert "DY09" not in warnings.get_column("warning").str.join(" ").item()
    # the coded rows of A and D still count, resolved through the frozen key
    assert sorted(res.ratings.get_column("code").unique().to_list()) == ["A", "B", "C", "D"]


def test_nothing_about_groups_dyads_or_therapists_while_blinded(tmp_path, coded_registry):
    run_all(tmp_path, study(tmp_path, unblind=False), coded_registry)
    assert pl.read_csv(tmp_path / "comparison.csv").height == 0
    for name in (
        "ratings.parquet",
        "accounting.csv",
        "rejections.csv",
        "warnings.csv",
        "agreement.csv",
        "consensus.csv",
        "to_discuss.csv",
        "comparison.csv",
    ):
        frame = (
            pl.read_parquet(tmp_path / name)
            if name.endswith(".parquet")
            else pl.read_csv(tmp_path / name, infer_schema=False)
        )
        assert not {"dyad_id", "patient_id", "therapist_id", "session", "group"} & set(frame.columns), name
        text = " ".join(str(v) for row in frame.rows() for v in row)
        assert not re.search(r"DY0\d|PA0\d|TH0\d|\bhigh\b|\blow\b|T\d+\b", text), (name, text)


def test_agreement_by_hand(tmp_path, coded_registry):
    run_all(tmp_path, study(tmp_path), coded_registry)
    agree = pl.read_csv(tmp_path / "agreement.csv")
    item1 = agree.filter((pl.col("instrument") == "rupture_markers") & (pl.col("measure") == "item_01"))
    # item 1 by coder C1, C2: A 1,2  B 4,3  C 0,0  D 5,4. Two-way ANOVA: MSR 8.125, MSC 0.125,
    # MSE 1.375/3. ICC(2,1) = (MSR-MSE)/(MSR+MSE+2(MSC-MSE)/4); ICC(2,k) = (MSR-MSE)/(MSR+(MSC-MSE)/4)
    msr, msc, mse = 8.125, 0.125, 1.375 / 3
    assert item1.select("statistic", "n_targets", "n_coders").rows() == [("icc2_1", 4, 2), ("icc2_k", 4, 2)]
    assert item1.get_column("value").to_list() == pytest.approx(
        [(msr - mse) / (msr + mse + 2 * (msc - mse) / 4), (msr - mse) / (msr + (msc - mse) / 4)], abs=1e-9
    )
    kappa = agree.filter(pl.col("instrument") == "rupture_type")
    # codes A w/none, B w/w, C none/none, D conf/conf: po = 3/4, pe = (2*1 + 1*2 + 1*1)/16 = 5/16
    assert kappa.select("measure", "statistic", "level", "n_targets", "n_coders").rows() == [
        ("item_01", "cohen_kappa", "nominal", 4, 2)
    ]
    assert kappa.item(0, "value") == pytest.approx((3 / 4 - 5 / 16) / (1 - 5 / 16), abs=1e-12)


def test_consensus_mean_majority_and_ties(tmp_path, coded_registry):
    coded = CODED + "hl,A,C3,rupture_type,none,,\nhl,B,C3,rupture_type,mixed,,\n"
    coded = coded.replace("hl,B,C2,rupture_type,withdrawal", "hl,B,C2,rupture_type,none")
    run_all(tmp_path, study(tmp_path, coded), coded_registry)
    table = pl.read_csv(tmp_path / "consensus.csv")
    types = table.filter(pl.col("instrument") == "rupture_type")
    assert types.select("code", "n_coders", "majority", "n_majority", "tie").rows() == [
        ("A", 3, "none", 2, False),
        ("B", 3, "mixed|none|withdrawal", 1, True),
        ("C", 2, "none", 2, False),
        ("D", 2, "confrontation", 2, False),
    ]
    score = table.filter((pl.col("instrument") == "rupture_markers") & (pl.col("measure") == "score"))
    # the coders' mean of the item means, item 3 reverse-keyed (5 - x): A C1 (1, 0, 2) C2 (2, 0, 2),
    # B C1 (4, 1, 5) C2 (3, 2, 4)
    assert score.select("code", "mean").rows()[:2] == [("A", pytest.approx(7 / 6)), ("B", pytest.approx(19 / 6))]
    assert score.item(0, "ratings") == "C1=1.0; C2=1.3333"


@pytest.mark.parametrize("distance, listed", [(0.999, True), (1.0, False), (1.001, False)])
def test_to_discuss_at_the_boundary(tmp_path, coded_registry, distance, listed):
    """Item 1 of code A is rated 1 and 2: a spread of exactly 1 point."""
    run_all(tmp_path, study(tmp_path), coded_registry, distance=distance)
    found = pl.read_csv(tmp_path / "to_discuss.csv").filter(
        (pl.col("code") == "A") & (pl.col("instrument") == "rupture_markers") & (pl.col("measure") == "item_01")
    )
    assert found.height == (1 if listed else 0)
    if listed:
        assert found.item(0, "reason") == "the ratings span 1.0 points, more than coding.discuss_distance 0.999"


def test_codes_that_are_not_unanimous_are_discussed(tmp_path, coded_registry):
    run_all(tmp_path, study(tmp_path), coded_registry, distance=5)
    found = pl.read_csv(tmp_path / "to_discuss.csv")
    assert found.select("code", "instrument", "ratings", "reason").rows() == [
        ("A", "rupture_type", "C1=withdrawal; C2=none", "the coders' codes differ, with no majority (a tie)")
    ]


def cr1(y, d, cluster):
    """Hand computation: OLS slope of y on d with the CR1 cluster-robust variance."""
    x = np.column_stack([np.ones_like(y), d])
    bread = np.linalg.inv(x.T @ x)
    b = bread @ x.T @ y
    e = y - x @ b
    groups = np.unique(cluster)
    meat = sum(np.outer(x[cluster == g].T @ e[cluster == g], x[cluster == g].T @ e[cluster == g]) for g in groups)
    n, k, g = len(y), 2, len(groups)
    v = g / (g - 1) * (n - 1) / (n - k) * bread @ meat @ bread
    se = np.sqrt(v[1, 1])
    t = sps.t.ppf(0.975, g - 1)
    return b[1], b[1] - t * se, b[1] + t * se, 2 * sps.t.sf(abs(b[1] / se), g - 1)


def test_comparison_recovers_a_known_difference_with_patients_in_both_groups():
    """A constructed study: 6 patients, each with a high and a low session (as high_low_alliance
    selects them), plus 2 patients with a high session only; observer score = 2 + patient
    effect + 1.5 in high sessions + a deterministic residual that sums to zero per group."""
    patients = [f"PA{i}" for i in range(1, 9)]
    u = np.array([0.4, -0.3, 0.8, -0.6, 0.1, -0.2, 0.5, -0.5])
    r_high = np.array([0.2, -0.1, 0.0, 0.1, -0.3, 0.1, 0.0, 0.0])
    r_low = np.array([-0.2, 0.3, 0.1, -0.1, 0.0, -0.1])
    rows = [("hl", f"H{i}", f"DH{i}", "high", patients[i], 2 + u[i] + 1.5 + r_high[i]) for i in range(8)]
    rows += [("hl", f"L{i}", f"DL{i}", "low", patients[i], 2 + u[i] + r_low[i]) for i in range(6)]
    frame = pl.DataFrame(rows, schema=["selection", "code", "dyad_id", "group", "patient_id", "mean"], orient="row")
    table = frame.select(
        "selection",
        "code",
        pl.lit("rupture_markers").alias("instrument"),
        pl.lit("score").alias("measure"),
        pl.lit("numeric").alias("kind"),
        "mean",
    )
    out = comparison.compare(
        table, frame.select("selection", "code", "dyad_id", "group"), frame.select("dyad_id", "patient_id"), ["hl"]
    )
    row = out.row(0, named=True)
    y = frame.get_column("mean").to_numpy()
    d = (frame.get_column("group") == "high").to_numpy().astype(float)
    want = cr1(y, d, frame.get_column("patient_id").to_numpy())
    high_mean = 2 + u.mean() + 1.5
    low_mean = 2 + u[:6].mean()
    assert (row["group_a"], row["group_b"], row["n_a"], row["n_b"], row["n_patients"], row["n_patients_both"]) == (
        "high",
        "low",
        8,
        6,
        8,
        6,
    )
    assert (row["mean_a"], row["mean_b"]) == (pytest.approx(high_mean), pytest.approx(low_mean))
    assert row["difference"] == pytest.approx(high_mean - low_mean)
    assert (row["difference"], row["ci_low"], row["ci_high"], row["p"]) == pytest.approx(want, rel=1e-9)
    assert row["ci_low"] > 0  # the constructed difference is found


def test_blinded_selections_are_not_compared():
    table = pl.DataFrame(
        {
            "selection": ["hl"] * 4,
            "code": list("ABCD"),
            "instrument": ["x"] * 4,
            "measure": ["score"] * 4,
            "kind": ["numeric"] * 4,
            "mean": [1.0, 2.0, 3.0, 4.0],
        }
    )
    keys = pl.DataFrame(
        {"selection": ["hl"] * 4, "code": list("ABCD"), "dyad_id": list("1234"), "group": ["high", "low"] * 2}
    )
    assert (
        comparison.compare(table, keys, pl.DataFrame({"dyad_id": list("1234"), "patient_id": list("1234")}), []).height
        == 0
    )


def test_a_coded_export_is_mapped_like_any_input(tmp_path, coded_registry):
    coded = "Urval,Kod,Kodare,Formulär,R1,R2,R3\nhl,A,C1,rupture_markers,1,0,3\nhl,B,C1,rupture_markers,4,1,0\n"
    coding = study(tmp_path, coded)
    coding["inputs"][0].update(
        {
            "columns": {"selection": "Urval", "code": "Kod", "coder_id": "Kodare", "instrument": "Formulär"},
            "items": "R{n}",
        }
    )
    res = run_all(tmp_path, coding, coded_registry)
    assert res.ratings.select("code", "coder_id", "item_01", "item_03").rows() == [("A", "C1", 1, 3), ("B", "C1", 4, 0)]


def test_a_coded_file_without_coder_column_is_one_clear_message(tmp_path, coded_registry):
    from dyadflow.core.errors import DyadflowError

    coding = study(tmp_path, "selection,code,instrument,item_01\nhl,A,rupture_type,none\n")
    out = {
        k: str(tmp_path / f"{k}.{'parquet' if k == 'ratings' else 'csv'}")
        for k in ("ratings", "accounting", "rejections", "warnings")
    }
    with pytest.raises(DyadflowError) as info:
        pipeline.run_ratings(coding, coded_registry, "strict", None, out)
    assert (info.value.column, info.value.line) == ("coder_id", 1)
    assert "required column missing: coder_id" in info.value.message
    # validation: quarantine: the file is quarantined, accounted with no rows
    res = pipeline.run_ratings(coding, coded_registry, "quarantine", None, out)
    acc = res.accounting.row(0, named=True)
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"]) == (0, 0, 0)
    assert "required column missing: coder_id" in acc["file_error"]


# --- issue 19: the same bytes from the same inputs ------------------------------------

CODING_CSVS = ("agreement", "consensus", "to_discuss", "comparison", "accounting", "rejections")


class _Files(SimpleNamespace):
    """Snakemake's input/output/params objects as the stages read them (attribute or key)."""

    def __getitem__(self, key):
        return getattr(self, key)


def _shuffled(text: str, seed: int, keep_last: int = 0) -> str:
    """The CSV ``text`` with its data rows in another order (the header and the last ``keep_last`` rows stay)."""
    import random

    lines = text.splitlines(keepends=True)
    body, tail = lines[1 : len(lines) - keep_last], lines[len(lines) - keep_last :]
    random.Random(seed).shuffle(body)
    assert body != lines[1 : len(lines) - keep_last]
    return "".join([lines[0], *body, *tail])


def _run_coding_stage(work: Path, config: dict) -> None:
    """The coding stage's three rules (workflow/rules/coding.smk) in this process, in ``work``."""
    from dyadflow.stages import run_stage

    coding, res = config["coding"], "results/coding"
    current_keys = ["results/selection/high_low_key.csv"]
    run_stage(
        "coding_ratings",
        log=f"logs/{res}/ratings.log",
        input=_Files(current_keys=current_keys),
        output=_Files(
            **{
                k: f"{res}/{k}.{'parquet' if k == 'ratings' else 'csv'}"
                for k in ("ratings", "accounting", "rejections", "warnings")
            }
        ),
        params=_Files(coding=coding, policy=config["validation"], instruments_dir=config["instruments_dir"]),
    )
    run_stage(
        "coding_agreement",
        log=f"logs/{res}/agreement.log",
        input=_Files(ratings=f"{res}/ratings.parquet"),
        output=_Files(**{k: f"{res}/{k}.csv" for k in ("agreement", "consensus", "to_discuss")}),
        params=_Files(instruments_dir=config["instruments_dir"], discuss_distance=coding["discuss_distance"]),
    )
    run_stage(
        "coding_comparison",
        log=f"logs/{res}/comparison.log",
        input=_Files(consensus=f"{res}/consensus.csv", dyads="results/stats/dyads.parquet"),
        output=_Files(comparison=f"{res}/comparison.csv"),
        params=_Files(selections=coding["selections"]),
    )


def test_coding_outputs_are_the_same_bytes_from_shuffled_rows_in_another_folder(demo_built, tmp_path, monkeypatch):
    """Issue 19 (found by the cluster test): the coding stage run twice on the demo's coded
    file, frozen key and dyads, in two folders, the second with every input's rows shuffled
    (the coded file's last row, the rejected one, stays on line 62), writes the same bytes;
    only accounting's sha256 is the second file's own.

    Before daeec71 consensus rows were sorted by selection, code, instrument and measure
    rank only; the three sub_* measures of rupture_markers share a rank, so their order was
    polars' group_by order, which changes from run to run (even on the same input) and with
    it consensus.csv, to_discuss.csv and the comparison's float sums. Checked: with
    ``consensus._order`` of daeec71^ monkeypatched in, this test fails."""
    import hashlib
    import shutil

    import yaml

    from dyadflow.core.config import fill_defaults

    config = fill_defaults(yaml.safe_load((demo_built / "study.yaml").read_text(encoding="utf-8")))
    coded, frozen = config["coding"]["inputs"][0]["path"], config["coding"]["selections"][0]["key"]
    assert (coded, frozen) == ("data/demo/coded_high_low.csv", "data/demo/high_low_key_frozen.csv")
    inputs = (coded, frozen, config["instruments_dir"], "results/selection/high_low_key.csv")
    runs = {}
    for name in ("first", "second"):
        work = tmp_path / name
        for rel in (*inputs, "results/stats/dyads.parquet"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (demo_built / rel).is_dir() else shutil.copyfile
            copy(demo_built / rel, work / rel)
        if name == "second":
            for rel, keep in ((coded, 1), (frozen, 0), ("results/selection/high_low_key.csv", 0)):
                text = (work / rel).read_text(encoding="utf-8")
                (work / rel).write_text(_shuffled(text, seed=19, keep_last=keep), encoding="utf-8")
            dyads = pl.read_parquet(work / "results/stats/dyads.parquet")
            dyads.sample(fraction=1.0, shuffle=True, seed=19).write_parquet(work / "results/stats/dyads.parquet")
        monkeypatch.chdir(work)
        _run_coding_stage(work, config)
        runs[name] = {f: (work / "results/coding" / f"{f}.csv").read_bytes() for f in CODING_CSVS}
    first, second = runs["first"], runs["second"]
    sha = {n: hashlib.sha256((tmp_path / n / coded).read_bytes()).hexdigest() for n in runs}
    assert sha["first"] != sha["second"] and sha["first"].encode() in first["accounting"]
    first["accounting"] = first["accounting"].replace(sha["first"].encode(), sha["second"].encode())
    assert second == first
    # the outputs compared are not empty (the comparison has rows; the one rejection is line 62)
    assert all(len(b.splitlines()) > 1 for b in (first["agreement"], first["consensus"], first["comparison"]))
    assert first["rejections"].count(b"\n") == 2 and b",62," in first["rejections"]
