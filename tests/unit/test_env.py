"""ecp.env: the strict readers of environment variables (README: `true`/`false` only)."""

import subprocess
import sys
from pathlib import Path

import pytest

from ecp.env import ConfigError, envbool

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("false", False), ("TRUE", True), ("False", False), (" true\n", True)],
)
def test_envbool_reads_true_and_false(monkeypatch, raw, value):
    monkeypatch.setenv("ECP_TEST_FLAG", raw)
    assert envbool("ECP_TEST_FLAG", not value) is value


@pytest.mark.parametrize("default", [True, False])
def test_envbool_unset_or_empty_is_the_default(monkeypatch, default):
    monkeypatch.delenv("ECP_TEST_FLAG", raising=False)
    assert envbool("ECP_TEST_FLAG", default) is default
    monkeypatch.setenv("ECP_TEST_FLAG", "")
    assert envbool("ECP_TEST_FLAG", default) is default


@pytest.mark.parametrize("raw", ["yes", "1", "on", "no", "0", "off", "ture", "enabled", "t"])
def test_envbool_refuses_anything_else_by_name(monkeypatch, raw):
    monkeypatch.setenv("ECP_TEST_FLAG", raw)
    with pytest.raises(ConfigError, match=f"ECP_TEST_FLAG must be true or false, not '{raw}'"):
        envbool("ECP_TEST_FLAG", False)


@pytest.mark.parametrize("raw", ["yes", "1", "on"])
def test_debug_yes_stops_the_start_up(raw):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "ecp.settings", "DEBUG": raw}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"DEBUG must be true or false, not '{raw}'" in done.stderr
