"""One error shape for every 4xx: {"message": ..., "errors": {field: [...]}}."""

import pytest

from api.exceptions import error_body
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures


@pytest.fixture
def org(client_for):
    return client_for("org")


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"message", "errors"}
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_malformed_json_is_400(cast, org):
    response = org.generic("POST", "/api/v1/rules", "{not json", content_type="application/json")
    assert assert_error(response, 400)["message"].startswith("JSON parse error")


def test_a_form_body_is_415(cast, org):
    response = org.post("/api/v1/rules", {"a": "b"}, format="multipart")
    assert_error(response, 415)


def test_a_wrong_method_is_405(cast, org):
    body = assert_error(org.delete("/api/v1/org-settings"), 405)
    assert body["message"] == 'Method "DELETE" not allowed.'


@pytest.mark.parametrize("url", ["/api/v1/nothing-here", "/api/v2/devices", "/api/v1/devices/x"])
def test_an_unknown_url_under_api_is_a_json_404(cast, org, url):
    body = assert_error(org.get(url), 404)
    assert body["message"] == f"No API endpoint at {url}."


def test_an_object_that_does_not_exist_is_404(cast, org):
    assert assert_error(org.get("/api/v1/rules/424242"), 404)["message"] == (
        "No such device access rule."
    )


def test_several_fields_are_named_in_the_message(cast, org):
    body = assert_error(org.post("/api/v1/rules", {}), 400)
    assert set(body["errors"]) == {"characteristic", "query_string", "access_level"}
    assert body["message"] == (
        "Invalid input: characteristic: This field is required.; "
        "query_string: This field is required.; access_level: This field is required."
    )


def test_a_non_object_body_is_a_general_error(cast, org):
    body = assert_error(org.post("/api/v1/rules", ["a"]), 400)
    assert body["errors"] == {}
    assert "Expected a dictionary" in body["message"]


def test_nested_errors_are_flattened_to_dotted_fields():
    detail = {"add_allowed": {1: ["Too long."]}, "non_field_errors": ["Nope."], "x": "y"}
    assert error_body(detail) == {
        "message": "Nope.",
        "errors": {"add_allowed.1": ["Too long."], "x": ["y"]},
    }
    assert error_body({"detail": "Not found."}) == {"message": "Not found.", "errors": {}}
    assert error_body(["a", "b"]) == {"message": "a b", "errors": {}}
