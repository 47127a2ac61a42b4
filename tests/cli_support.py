"""Running `manage.py eas` from tests: in-process, or as a child process for error paths."""

import io
import json
import os
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command


def eas(*args) -> str:
    out = io.StringIO()
    call_command("eas", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def eas_json(*args):
    return json.loads(eas(*args, "--format", "json"))


def run_eas(tmp_path, *args) -> subprocess.CompletedProcess:
    """`python manage.py eas ...` in a child process whose database is never opened."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ECP_VAR_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "manage.py", "eas", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
