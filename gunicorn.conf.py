"""gunicorn's settings for ECP: the hooks /metrics needs under several workers.

gunicorn reads ./gunicorn.conf.py by itself when started from the project's
folder (`make run`); elsewhere pass `-c /path/to/ecp/gunicorn.conf.py`. Command
line options (--bind, --workers, ...) still apply. Nothing here acts unless
PROMETHEUS_MULTIPROC_DIR is set (docs/METRICS.md): each worker then writes its
counters to files there, and /metrics, in whichever worker it lands, sums them.
"""

import os
from pathlib import Path


def _metrics_dir() -> Path | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


def on_starting(server):
    """A fresh directory: files left by an earlier run would be added to this one's."""
    directory = _metrics_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()


def child_exit(server, worker):
    """A worker that exited keeps its counters; its live gauges go (prometheus-client)."""
    if _metrics_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
