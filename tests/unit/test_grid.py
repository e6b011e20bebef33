from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import InputError
from harness.phase2 import grid


def test_default_grid_is_20_around_the_field():
    g = grid.default_grid()
    assert len(g) == 20 and g[0] == {"threshold_I": 17, "threshold_P": 18, "threshold_R": 19}
    assert len({json.dumps(p, sort_keys=True) for p in g}) == 20


def test_default_template_renders_the_field_command():
    template = grid.default_template()
    grid.check(template, grid.default_grid())
    cmd = grid.render(template, grid.Evaluation(0, grid.default_grid()[0]))
    argv = list(cmd.argv)
    assert argv[argv.index("--threshold_P") + 1] == "18"
    assert cmd.is_reference


def test_load_json_and_toml(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps([{"a": 1}, {"a": 2}]))
    (tmp_path / "g.toml").write_text("[[evaluation]]\na = 1\n[[evaluation]]\na = 2.5\n")
    (tmp_path / "h.json").write_text(json.dumps({"evaluations": [{"a": "x"}]}))
    assert grid.load(tmp_path / "g.json") == [{"a": 1}, {"a": 2}]
    assert grid.load(tmp_path / "g.toml") == [{"a": 1}, {"a": 2.5}]
    assert grid.load(tmp_path / "h.json") == [{"a": "x"}]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.json", "{not json", "bad grid file"),
    ("bad.toml", "[[evaluation]\n", "bad grid file"),
    ("empty.json", "[]", "non-empty list"),
    ("scalar.json", "[1, 2]", "entry 0 is not"),
    ("nested.json", '[{"a": [1]}]', "is not a number"),
    ("badkey.json", '[{"a-b": 1}]', "bad name"),
])
def test_malformed_grids(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        grid.load(tmp_path / name)


def test_missing_grid_file(tmp_path):
    with pytest.raises(InputError, match="bad grid file"):
        grid.load(tmp_path / "nope.json")


def test_unknown_placeholder_and_unused_key():
    with pytest.raises(InputError, match=r"unknown placeholder \{lr\}"):
        grid.check(["train", "--lr", "{lr}"], [{"epochs": 1}])
    with pytest.raises(InputError, match="not used by the command template"):
        grid.check(["train", "--lr", "{lr}"], [{"lr": 1, "epochs": 2}])
    with pytest.raises(InputError, match="bad placeholder"):
        grid.check(["train", "{lr:.2f}"], [{"lr": 1}])
    grid.check(["echo", "{{literal}}", "{lr}"], [{"lr": 1}])


@given(st.lists(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                st.one_of(st.integers(),
                                          st.floats(allow_nan=False, allow_infinity=False),
                                          st.text(st.characters(blacklist_characters="\x00"),
                                                  max_size=5), st.booleans()),
                                min_size=1, max_size=4), min_size=1, max_size=6))
def test_valid_grids_round_trip_and_keys_are_stable(entries):
    assert grid.validate(json.loads(json.dumps(entries))) == entries
    evals = grid.evaluations(entries, None)
    keys = [e.key for e in evals]
    assert len(set(keys)) == len(keys)
    assert keys == [e.key for e in grid.evaluations(entries, None)]


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), min_size=1),
                 st.just([]), st.just([{}]), st.just([{"a": {"b": 1}}])))
def test_invalid_grids_raise_grid_error(data):
    with pytest.raises(InputError):
        grid.validate(data)


@pytest.mark.parametrize(("value", "said"), [
    ("a\x00b", "NUL byte"), ("x" * (grid.MAX_VALUE_BYTES + 1), "characters long"),
    (float("inf"), "not a finite number"), (float("nan"), "not a finite number")])
def test_values_no_command_line_can_carry_are_refused(value, said):
    with pytest.raises(InputError, match=said):
        grid.validate([{"a": value}])


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "dir"])
def test_a_grid_file_that_is_not_a_regular_file_is_one_line(tmp_path, special):
    path = tmp_path / "grid.json"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "dir":
        path.mkdir()
    else:
        path = Path(special)
    with pytest.raises(InputError, match="not a regular file"):
        grid.load(path)
