import pytest
from django.db import connection

from tests.conftest import IN_CI


@pytest.mark.django_db
def test_ci_runs_the_suite_on_postgresql():
    if IN_CI:
        assert connection.vendor == "postgresql", "CI must run the suite against PostgreSQL"
    else:
        assert connection.vendor in ("sqlite", "postgresql")
