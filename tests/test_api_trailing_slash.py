"""Every /api/v1/ path answers with and without a trailing slash, with the same view:
no redirect, so a POST keeps its method and body whichever a client types."""

import pytest
from django.urls import reverse

from devices.models import AccessPolicy, MobileDevice
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures


@pytest.fixture
def org(client_for):
    return client_for("org")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/me",
        "/api/v1/devices",
        "/api/v1/mailboxes",
        "/api/v1/rules",
        "/api/v1/org-settings",
        "/api/v1/access-policies",
        "/api/v1/org-device-ids",
        "/api/v1/rule-change-jobs",
        "/api/v1/grandfather-devices",
        "/api/v1/audit-events",
        "/api/v1/notifications",
    ],
)
def test_a_list_answers_the_same_with_a_slash(cast, org, path):
    plain, slashed = org.get(path), org.get(f"{path}/")
    assert plain.status_code == slashed.status_code == 200
    assert plain.json() == slashed.json()


def test_a_detail_and_its_actions_take_the_slash_too(cast, org):
    device = cast["devices"]["alice-iphone"]
    assert org.get(f"/api/v1/devices/{device.pk}/").json()["device_id"] == "AliceIphone1"
    response = org.post(f"/api/v1/devices/{device.pk}/allow/")
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert device.access_state == "Allowed"


def test_a_write_with_a_slash_keeps_its_method_and_body(cast, org):
    response = org.post(
        "/api/v1/access-policies/", {"name": "Lab", "default_access_level": "Block"}
    )
    assert response.status_code == 201, response.content
    policy = AccessPolicy.objects.get()
    patched = org.patch(f"/api/v1/access-policies/{policy.pk}/", {"priority": 3})
    assert patched.status_code == 200, patched.content
    assert org.delete(f"/api/v1/access-policies/{policy.pk}/").status_code == 200
    assert not AccessPolicy.objects.exists()
    assert org.patch("/api/v1/org-settings/", {"send_user_mail": False}).status_code == 200


def test_bad_input_with_a_slash_is_the_same_error(cast, org):
    body = org.post("/api/v1/purge-quarantined/", {"older_than_days": -3})
    assert body.status_code == 400
    assert set(body.json()) == {"message", "errors"}
    assert MobileDevice.objects.count() == 3


@pytest.mark.parametrize("url", ["/api/v1/nothing-here/", "/api/v1/devices/x/", "/api/v1//"])
def test_an_unknown_path_with_a_slash_is_still_a_json_404(cast, org, url):
    response = org.get(url)
    assert response.status_code == 404
    assert response.json() == {"message": f"No API endpoint at {url}.", "errors": {}}


def test_the_slash_needs_the_same_credentials(cast, client_for):
    assert client_for("anon").get("/api/v1/devices/").status_code == 401
    assert client_for("norole").get("/api/v1/devices/").status_code == 403


def test_the_schema_and_reverse_name_the_paths_without_the_slash(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "/api/v1/devices" in paths
    assert not [p for p in paths if p.endswith("/")]
    assert reverse("api-device-list") == "/api/v1/devices"
    assert reverse("api-access-policy-detail", args=[3]) == "/api/v1/access-policies/3"
