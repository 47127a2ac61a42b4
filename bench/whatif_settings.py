"""What-if settings for bench_gate.py --whatif: ECP's settings with one change, to
measure what that change would buy. Not used by the product.

CONN_HEALTH_CHECKS (ecp/env.py) makes Django run SELECT 1 before the first query
of every request: one more database round trip per gate request.
"""

from ecp.settings import *  # noqa: F403

DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
