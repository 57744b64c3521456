"""The instrument registry: built-ins as in METHODS.md, clear errors for bad files."""

from __future__ import annotations

import textwrap

import pytest

from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import load_instrument, load_registry

MINIMAL = """\
key: mini
name: Mini scale
raters: [patient]
n_items: 3
response: {min: 0, max: 4}
scoring: {method: sum}
direction: lower_is_better
"""


def write(tmp_path, text, name="mini.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_builtin_instruments_match_methods(registry):
    assert sorted(registry) == ["bdi_ii", "oq_45", "phq_9", "wai_s", "wai_sr", "wai_sr_7"]
    wai_sr, wai_s, bdi, phq, oq = (registry[k] for k in ("wai_sr", "wai_s", "bdi_ii", "phq_9", "oq_45"))
    assert (wai_sr.n_items, wai_sr.min_value, wai_sr.max_value, wai_sr.method) == (12, 1, 5, "mean")
    assert wai_sr.subscales == {"task": (1, 2, 10, 12), "bond": (3, 5, 7, 9), "goal": (4, 6, 8, 11)}
    assert wai_sr.reverse_keyed == ()
    assert (wai_s.n_items, wai_s.max_value, wai_s.reverse_keyed, wai_s.reverse_sum) == (12, 7, (4, 10), 8)
    assert wai_s.raters == ("therapist",)
    assert (bdi.n_items, bdi.method, bdi.reliability, bdi.max_missing_items) == (21, "sum", 0.93, 4)
    assert [(b.label, b.min, b.max) for b in bdi.bands] == [
        ("minimal", 0, 13),
        ("mild", 14, 19),
        ("moderate", 20, 28),
        ("severe", 29, 63),
    ]
    assert [(r.item, r.above) for r in bdi.risk_items] == [(9, 0)]
    assert bdi.item_codes[16]["1b"] == 1 and bdi.item_codes[18]["3a"] == 3
    assert [b.min for b in phq.bands] == [0, 5, 10, 15, 20]
    assert phq.norms["reliable_change_points"] == 6 and phq.max_missing_items == 1
    assert (oq.n_items, oq.max_value, oq.norms["cutoff"], oq.norms["reliable_change_points"]) == (45, 4, 63.5, 14)
    assert oq.reverse_keyed == (1, 12, 13, 20, 21, 24, 31, 37, 43)
    assert sorted(i for items in oq.subscales.values() for i in items) == list(range(1, 46))


def test_seven_point_wai_sr_is_the_same_item_set_on_1_to_7(registry):
    wai7, wai5 = registry["wai_sr_7"], registry["wai_sr"]
    assert (wai7.n_items, wai7.min_value, wai7.max_value, wai7.method, wai7.raters) == (12, 1, 7, "mean", ("patient",))
    assert wai7.subscales == wai5.subscales and wai7.reverse_keyed == ()
    assert (wai7.score_min, wai7.score_max) == (1, 7)
    assert "Hatcher & Gillaspy (2006)" in wai7.source and "CIPPS" in wai7.source and "Oslo" in wai7.source


def test_seven_point_patient_alliance_is_accepted_not_rejected(tmp_path, registry):
    """CIPPS-like data (patient WAI-SR means above 5): item_value under wai_sr, accepted under wai_sr_7."""
    from conftest import row, run_validation, write_canonical

    items = (6, 7, 5, 6, 6, 5, 7, 6, 5, 6, 6, 7)  # mean 6.0
    rows = [row(session=1, instrument=k, items=items) for k in ("wai_sr", "wai_sr_7")]
    res = run_validation(write_canonical(tmp_path / "q.csv", rows), registry)
    assert res.rejections.select("source_line", "column", "rule").rows()[0] == (2, "item_01", "item_value")
    assert set(res.rejections.get_column("source_line").to_list()) == {2}
    assert res.accepted.select("source_line", "instrument").rows() == [(3, "wai_sr_7")]


def test_token_map_accepts_numbers_labels_and_codes(registry):
    wai = registry["wai_sr"].token_map(1)
    assert wai["always"] == 5 and wai["1"] == 1 and wai["3.0"] == 3 and "6" not in wai
    bdi16 = registry["bdi_ii"].token_map(16)
    assert bdi16["2a"] == 2 and bdi16["0"] == 0 and "4a" not in bdi16
    assert "1a" not in registry["bdi_ii"].token_map(15)


def test_minimal_file_loads_with_defaults(tmp_path):
    inst = load_instrument(write(tmp_path, MINIMAL))
    assert inst.key == "mini" and inst.max_missing_fraction == 0.2 and inst.bands == ()


@pytest.mark.parametrize(
    "change, key, words",
    [
        (("n_items: 3", "n_items: three"), "n_items", "is not of type 'integer'"),
        (("scoring: {method: sum}", "scoring: {method: median}"), "scoring.method", "'median' is not one of"),
        (("raters: [patient]", "raters: [client]"), "raters.0", "'client' is not one of"),
        (("name: Mini scale\n", ""), "name", "'name' is a required property"),
        (
            ("direction: lower_is_better", "direction: lower_is_better\nreverse: [1]"),
            "reverse",
            "Additional properties",
        ),
        (
            ("direction: lower_is_better", "direction: lower_is_better\nreverse_keyed: [4]"),
            "reverse_keyed",
            "beyond n_items",
        ),
        (
            ("direction: lower_is_better", "direction: lower_is_better\nsubscales: {a: [1, 9]}"),
            "subscales.a",
            "item 9 is beyond",
        ),
        (("response: {min: 0, max: 4}", "response: {min: 4, max: 0}"), "response", "must be below max"),
        (
            ("scoring: {method: sum}", "scoring: {method: sum, missing: subscale_mean}\nsubscales: {a: [1, 2]}"),
            "scoring.missing",
            "item 3 is in no subscale",
        ),
        (
            (
                "scoring: {method: sum}",
                "scoring: {method: sum, missing: subscale_mean}\nsubscales: {a: [1, 2], b: [2, 3]}",
            ),
            "scoring.missing",
            "item 2 is in subscales a and b",
        ),
        (
            ("scoring: {method: sum}", "scoring: {method: sum, subscales: median}"),
            "scoring.subscales",
            "'median' is not one of",
        ),
        (
            (
                "direction: lower_is_better",
                "direction: lower_is_better\nbands: [{label: a, min: 0, max: 5}, {label: b, min: 4, max: 12}]",
            ),
            "bands.1",
            "overlaps",
        ),
    ],
)
def test_invalid_instrument_names_file_and_key(tmp_path, change, key, words):
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(DyadflowError) as err:
        load_instrument(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert words in str(err.value)
    assert str(path) in str(err.value) and f"key '{key}'" in str(err.value)


def test_key_must_match_file_name(tmp_path):
    path = write(tmp_path, MINIMAL, name="other.yaml")
    with pytest.raises(DyadflowError, match="must equal the file name 'other'"):
        load_instrument(path)


def test_broken_yaml_names_the_line(tmp_path):
    path = write(tmp_path, MINIMAL + "subscales: {a: [1, 2}\n")
    with pytest.raises(DyadflowError) as err:
        load_instrument(path)
    assert err.value.line == 8 and "not valid YAML" in str(err.value)


def test_study_folder_adds_and_overrides_instruments(tmp_path):
    write(tmp_path, MINIMAL)
    corrected = (
        (load_instrument.__globals__["BUILTIN_DIR"] / "wai_s.yaml")
        .read_text()
        .replace("reverse_keyed: [4, 10]", "reverse_keyed: [4]")
    )
    write(tmp_path, corrected, name="wai_s.yaml")
    reg = load_registry(tmp_path)
    assert reg["mini"].n_items == 3
    assert reg["wai_s"].reverse_keyed == (4,)
    assert load_registry()["wai_s"].reverse_keyed == (4, 10)  # the built-in is untouched


def test_docs_example_instrument_is_valid(tmp_path):
    from conftest import REPO

    readme = (REPO / "docs" / "scoring.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\nkey: mood_scale", 1)[1].split("```", 1)[0]
    path = write(tmp_path, "key: mood_scale" + block, name="mood_scale.yaml")
    inst = load_instrument(path)
    assert (inst.n_items, inst.reverse_sum, inst.max_missing_items) == (10, 4, 1)
    assert inst.token_map(1)["most of the time"] == 4
