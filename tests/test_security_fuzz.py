"""A bounded fuzz run of the gate's parsers in CI (the million-input run is `make soak`).

The harness is bench/soak/fuzz_parsers.py's own (its mutational engine, so no
dependency): random mutations of valid queries and WBXML bodies, and every
input must parse or raise EASParseError, quickly. The hypothesis properties
in tests/unit/test_eas_query.py and tests/unit/test_wbxml.py cover the same
contract with generated inputs.
"""

import importlib.util
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "bench" / "soak" / "fuzz_parsers.py"
RUNS = 20_000


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_parsers", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["query", "wbxml"])
def test_the_parsers_only_ever_raise_their_own_error(fuzz, target):
    result = fuzz.run_mutate(target, RUNS, seed=9)
    assert result["runs"] == RUNS
    assert result["findings"] == 0
    assert result["slowest_ms"] < fuzz.SLOW * 1000


def test_the_harness_does_find_a_bug(fuzz, monkeypatch):
    """A parser that raises anything else is reported, with the input."""

    def broken(text):
        if "%" in text:
            raise IndexError("boom")

    monkeypatch.setattr(fuzz, "parse_query", broken)
    with pytest.raises(AssertionError, match="IndexError"):
        fuzz.run_mutate("query", RUNS, seed=9)


HOSTILE_RUNS = 5_000


def test_hostile_strings_are_refused_or_stored_without_unsafe_characters(fuzz):
    result = fuzz.run_hostile(HOSTILE_RUNS, seed=16)
    assert result["runs"] == HOSTILE_RUNS
    assert result["values_accepted"] > HOSTILE_RUNS  # most inputs reach a store, not only 400s
    assert result["findings"] == 0


def test_the_hostile_harness_finds_a_kept_bidi_override(fuzz, monkeypatch):
    """As before issue 16: record_contact stored device text as it came."""
    from devices import hostile

    monkeypatch.setattr(hostile, "clean_device_text", lambda text: text or "")
    with pytest.raises(AssertionError, match="unsafe character kept by contact_changes"):
        fuzz.run_hostile(HOSTILE_RUNS, seed=16)


def test_the_hostile_harness_finds_a_formula_cell(fuzz, monkeypatch):
    from devices import csv_export

    monkeypatch.setattr(csv_export, "safe_cell", lambda value: "" if value is None else str(value))
    with pytest.raises(AssertionError, match="CSV cell|unsafe character kept by the CSV"):
        fuzz.run_hostile(HOSTILE_RUNS, seed=16)
