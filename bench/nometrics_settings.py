"""bench_gate.py --without-metrics: ECP's settings without the gate's metrics middleware,
to measure what counting and timing each gate answer costs (docs/PERFORMANCE.md).
Not used by the product.
"""

from ecp.settings import *  # noqa: F403

MIDDLEWARE = [m for m in MIDDLEWARE if m != "devices.metrics.GateMetricsMiddleware"]  # noqa: F405
