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
