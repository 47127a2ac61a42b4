"""Real threads released together, for the tests of races on PostgreSQL
(tests/test_actions_races.py, tests/test_gate_concurrency.py)."""

import threading

from django.db import connections


def all_at_once(send, count: int) -> list:
    """Run send(i) in `count` threads released together; their results in order.
    Each thread closes its database connections; any exception fails the caller."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = send(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results
