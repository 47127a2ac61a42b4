"""Every URL has its rights tested: a new URL without a permission matrix entry fails here.

The matrices are the web one (tests/web/test_web_permissions.py) and the API
one (tests/test_api_roles.py); their URL lists are imported, not copied. A
route in neither must be in one of the lists below, with the reason, and those
lists are checked too: each "elsewhere" file must name the URL, each public or
technical URL must answer an anonymous visitor as written here.
"""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from ecp.urls import ACTIVESYNC_ROUTE
from tests.test_api_roles import MATRIX as API_MATRIX
from tests.web.test_web_permissions import GET_MATRIX, POST_MATRIX, POST_ONLY

TESTS = Path(__file__).resolve().parent

# Role-restricted pages whose rights are tested in their own files (not in the web matrix
# yet): route -> the test file that checks every role on it.
ELSEWHERE = {
    "notifications/": "test_sent_mail_page.py",  # org 200, help desk 403, end user 403, anon
    "notifications/<int:pk>/resend": "test_sent_mail_page.py",  # POST only, org only
    "account/tokens/": "test_api_tokens.py",  # any signed-in user, own tokens only
    "account/tokens/<int:pk>/revoke": "test_api_tokens.py",  # POST only, own tokens only
    "accounts/logout/": "web/test_web_permissions.py",  # test_logout_is_post_only
    "account/preferences/": "web/test_web_languages.py",  # any signed-in user, own only
    "import/": "web/test_web_import.py",  # org management only; help desk, end user 403
    "import/<int:pk>/": "web/test_web_import.py",
    "import/<int:pk>.json": "web/test_web_import.py",
    "import/<int:pk>/start": "web/test_web_import.py",  # POST only
    # The signed link is the proof for the owner's answers; admin actions need a role.
    "links/<str:token>/": "web/test_web_action_links.py",
    "policies/<int:pk>/delete/preview.csv": "web/test_web_policies.py",  # org management
}

# Public or technical URLs: route -> (a URL to try, what an anonymous visitor gets, why).
PUBLIC_OR_TECHNICAL = {
    "healthz": ("/healthz", 200, "liveness probe: no data, no database"),
    "readyz": ("/readyz", 200, "readiness probe: says only whether the database answers"),
    "metrics": (
        "/metrics",
        200,  # the test client is 127.0.0.1; other addresses and tokens: tests/test_metrics.py
        "Prometheus: loopback (ECP_METRICS_ALLOWED) or a bearer token only, no personal data",
    ),
    ACTIVESYNC_ROUTE: (
        "/Microsoft-Server-ActiveSync",
        405,  # GET; POST needs Basic credentials (tests/test_gate_auth.py)
        "the gate: its own Basic authentication and throttling",
    ),
    "eas/auth": (
        "/eas/auth",
        400,
        "nginx auth_request: Basic credentials, tests/test_gate_auth.py",
    ),
    "eas/observe": ("/eas/observe", 405, "nginx mirror: Basic credentials, test_nginx_gate.py"),
    "eas/answer": (
        "/eas/answer",
        405,
        "nginx error_page for denied requests: Basic credentials, test_gate_answers.py",
    ),
    "api/schema/": ("/api/schema/", 200, "the OpenAPI description: no data"),
    "api/docs/": ("/api/docs/", 200, "Swagger UI for the schema: no data"),
    "^api/": ("/api/v2/anything", 404, "the API's JSON 404 for unknown paths"),
    "admin/": ("/admin/", 302, "Django's admin: staff only, its own permissions"),
}


def routes(patterns=None, prefix=""):
    """Every route, as Django's resolver spells it (ResolverMatch.route)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route == "admin/":
                yield route  # one entry for the admin site
                continue
            yield from routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def route_of(template: str) -> str:
    path = re.sub(r"\{\w+\}", "1", template).split("?")[0]
    return resolve(path).route


def covered_by_the_matrices() -> set[str]:
    web = [t for t, _ in GET_MATRIX] + [t for t, _, _ in POST_MATRIX] + list(POST_ONLY)
    api = [url for _, url, _, _ in API_MATRIX]
    return {route_of(template) for template in web + api}


def slash_twin(route: str) -> str:
    """An API route with a trailing slash is the same view as the one without
    (tests/test_api_trailing_slash.py): the matrix of the one covers both."""
    if route.startswith("api/v1/") and route.endswith("/"):
        return route[:-1]
    return route


def test_every_url_is_in_a_permission_matrix_or_listed_with_its_reason():
    known = covered_by_the_matrices() | set(ELSEWHERE) | set(PUBLIC_OR_TECHNICAL)
    missing = sorted(route for route in routes() if slash_twin(route) not in known)
    assert not missing, (
        f"URLs with no permission test: {missing}. Add them to the web matrix "
        "(tests/web/test_web_permissions.py) or the API matrix (tests/test_api_roles.py), "
        "or, with a reason, to a list in tests/test_security_urls.py."
    )


def test_the_lists_name_only_urls_that_exist():
    existing = set(routes())
    stale = sorted((set(ELSEWHERE) | set(PUBLIC_OR_TECHNICAL)) - existing)
    assert not stale, f"listed but no longer routed: {stale}"
    overlap = sorted(covered_by_the_matrices() & (set(ELSEWHERE) | set(PUBLIC_OR_TECHNICAL)))
    assert not overlap, f"in a matrix now, take them off the lists: {overlap}"


@pytest.mark.parametrize(("route", "test_file"), sorted(ELSEWHERE.items()))
def test_the_file_named_for_a_url_tests_it(route, test_file):
    literal = "/" + route.split("<")[0]
    assert literal in (TESTS / test_file).read_text(), f"{test_file} never names {literal}"


@pytest.mark.parametrize("route", sorted(PUBLIC_OR_TECHNICAL))
def test_public_and_technical_urls_answer_anonymous_visitors_as_listed(db, route):
    url, status, _why = PUBLIC_OR_TECHNICAL[route]
    assert resolve(url.split("?")[0]).route == route or route == "admin/"
    assert Client().get(url).status_code == status
