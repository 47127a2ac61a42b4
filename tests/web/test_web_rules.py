"""Device access rules: "create a rule for similar devices", new, edit, delete, test a device."""

import html
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from devices.models import AccessState, DeviceAccessRule

from .conftest import state_of


@pytest.fixture
def admin(world):
    client = Client()
    client.force_login(world.org)
    return client


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_similar_devices_form_is_prefilled_and_previewed(world, admin):
    response = admin.get(f"/rules/new?device={world.alice_phone.pk}&next=/devices/quarantine/")
    form = response.context["form"]
    assert form["device_type"].value() == "iPhone"
    assert form["device_model"].value() == "iPhone15,2"
    assert not form["only_this_model"].value()
    assert form["access_level"].value() == "Allow"
    assert "Saving this rule releases 2 quarantined devices." in _text(response)
    assert response.context["previewed"] == "DeviceType\x1fiPhone\x1fAllow"
    assert DeviceAccessRule.objects.count() == 1  # the preview saved nothing


def test_only_this_model_narrows_the_rule(world, admin):
    response = admin.post(
        "/rules/new",
        {
            "device": world.alice_phone.pk,
            "device_type": "iPhone",
            "device_model": "iPhone15,2",
            "only_this_model": "on",
            "access_level": "Allow",
            "preview": "1",
        },
    )
    assert "Saving this rule releases 1 quarantined device." in _text(response)
    assert response.context["values"]["characteristic"] == "DeviceModel"


def test_saving_the_previewed_rule_releases_the_devices(world, admin):
    response = admin.post(
        "/rules/new",
        {
            "device": world.alice_phone.pk,
            "device_type": "iPhone",
            "device_model": "iPhone15,2",
            "access_level": "Allow",
            "previewed": "DeviceType\x1fiPhone\x1fAllow",
            "next": "/devices/quarantine/",
            "save": "1",
        },
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/devices/quarantine/", 302)
    assert _messages(response) == [
        'Created the rule "iPhone" on DeviceType (Allow): it releases 2 quarantined devices.'
    ]
    assert state_of(world.alice_phone) == state_of(world.carol_phone) == AccessState.ALLOWED
    assert state_of(world.alice_tablet) == AccessState.QUARANTINED
    rule = DeviceAccessRule.objects.get(query_key="iphone")
    assert rule.created_by == world.org


def test_values_changed_after_the_preview_are_previewed_again_not_saved(world, admin):
    response = admin.post(
        "/rules/new",
        {
            "device": world.alice_phone.pk,
            "device_type": "iPhone",
            "device_model": "iPhone15,2",
            "access_level": "Block",
            "previewed": "DeviceType\x1fiPhone\x1fAllow",
            "save": "1",
        },
    )
    assert response.status_code == 200
    assert "Saving this rule blocks 2 quarantined devices." in _text(response)
    assert not DeviceAccessRule.objects.filter(query_key="iphone").exists()


def test_a_duplicate_rule_is_pointed_out(world, admin):
    response = admin.post(
        "/rules/new",
        {"characteristic": "DeviceModel", "query_string": "sm-g9*", "access_level": "Allow"},
    )
    text = _text(response)
    assert 'A rule for DeviceModel "SM-G9*" already exists (Block).' in text
    assert f"/rules/{world.rule.pk}/edit" in text
    assert 'name="save"' not in text


def test_new_rule_form_lists_the_families_seen(world, admin):
    response = admin.get("/rules/new")
    assert response.context["types"] == ["Android", "iPad", "iPhone"]
    assert "iPhone15,2" in response.context["models"]
    text = _text(response)
    assert 'list="values-DeviceType"' in text
    assert '<datalist id="values-DeviceModel">' in text
    assert re.search(r'<label\s+for="id_query_string"', text)


def test_edit_with_preview(world, admin):
    url = f"/rules/{world.rule.pk}/edit"
    assert admin.get(url).context["form"]["query_string"].value() == "SM-G9*"
    data = {"characteristic": "DeviceType", "query_string": "Android", "access_level": "Block"}
    response = admin.post(url, data)
    assert "Saving this rule blocks 1 quarantined device." in _text(response)
    response = admin.post(url, {**data, "previewed": response.context["previewed"], "save": "1"})
    assert response["Location"] == "/rules/"
    assert state_of(world.bob_phone) == AccessState.BLOCKED
    world.rule.refresh_from_db()
    assert (world.rule.characteristic, world.rule.query_string) == ("DeviceType", "Android")


def test_delete_previews_then_deletes(world, admin):
    admin.post(
        "/rules/new",
        {
            "characteristic": "DeviceType",
            "query_string": "iPad",
            "access_level": "Allow",
            "previewed": "DeviceType\x1fiPad\x1fAllow",
            "save": "1",
        },
    )
    rule = DeviceAccessRule.objects.get(query_key="ipad")
    assert state_of(world.alice_tablet) == AccessState.ALLOWED
    page = admin.get(f"/rules/{rule.pk}/delete")
    assert "Deleting it puts 1 allowed device in quarantine." in _text(page)
    assert DeviceAccessRule.objects.filter(pk=rule.pk).exists()
    response = admin.post(f"/rules/{rule.pk}/delete", follow=True)
    assert _messages(response) == [
        'Deleted the rule "iPad" on DeviceType (Allow): it puts 1 allowed device in quarantine.'
    ]
    assert state_of(world.alice_tablet) == AccessState.QUARANTINED


def test_rule_list_counts_the_devices_each_rule_decides(world, admin):
    response = admin.get("/rules/")
    (rule,) = response.context["page"]
    assert rule.n_devices == 0
    assert "Test a device" in _text(response)


@pytest.mark.parametrize(
    ("query", "state", "why"),
    [
        ("device_type=iPhone&info_received=on", "Quarantined", "default access level"),
        (
            "device_type=SAMSUNG&device_model=SM-G991B&info_received=on",
            "Blocked",
            'the rule "SM-G9*" on DeviceModel (Block) decides',
        ),
        ("device_type=SAMSUNG&device_model=SM-G991B", "Blocked", "SM-G9*"),
        ("device_type=iPhone", "DeviceDiscovery", "device discovery for up to 15 minutes"),
    ],
)
def test_the_test_a_device_box(world, admin, query, state, why):
    response = admin.get(f"/rules/test?{query}")
    result = response.context["result"]
    assert result["decision"].state == state
    assert why in result["why"]
    assert [s["characteristic"] for s in result["steps"]] == [
        "UserAgent",
        "DeviceOS",
        "DeviceModel",
        "DeviceType",
    ]


def test_the_test_box_needs_something_to_test(world, admin):
    response = admin.get("/rules/test?device_type=&info_received=on")
    assert response.context["result"] is None
    assert "Type at least one of" in _text(response)
    assert admin.get("/rules/test").context["result"] is None


def test_help_desk_reads_rules_but_cannot_change_them(world):
    client = Client()
    client.force_login(world.helpdesk)
    text = _text(client.get("/rules/"))
    assert "Only Organization Management can create or change device access rules." in text
    assert 'href="/rules/new"' not in text
    assert f"/rules/{world.rule.pk}/edit" not in text
    assert client.get("/rules/test?device_type=iPhone").status_code == 200


def test_the_help_desk_is_told_why_it_cannot_create_a_rule(world):
    client = Client()
    client.force_login(world.helpdesk)
    response = client.get(f"/rules/new?device={world.alice_phone.pk}")
    assert response.status_code == 403
    assert "Only Organization Management can create or change device access rules." in _text(
        response
    )


def test_the_rules_page_shows_where_version_rules_stand(world, admin):
    response = admin.get("/rules/")
    text = html.unescape(re.sub("<[^>]+>", "", response.content.decode()))
    assert "iOS < 17 matches iOS 16.7.10 20H350 but not iOS 17.0" in text
    assert "the most restrictive matching rule wins" in text
    assert "a pattern before a version comparison" in text


def test_a_version_rule_is_previewed_then_saved(world, admin):
    values = {"characteristic": "DeviceOS", "query_string": "iOS<17", "access_level": "Block"}
    response = admin.post("/rules/new", {**values, "preview": "1"})
    # carol's iPhone reports iOS 16.7; alice's iOS 17.4.
    assert "Saving this rule blocks 1 quarantined device." in _text(response)
    assert response.context["values"]["query_string"] == "iOS < 17"
    assert DeviceAccessRule.objects.count() == 1
    response = admin.post(
        "/rules/new",
        {**values, "previewed": response.context["previewed"], "save": "1"},
        follow=True,
    )
    assert _messages(response) == [
        'Created the rule "iOS < 17" on DeviceOS (Block): it blocks 1 quarantined device.'
    ]
    assert state_of(world.carol_phone) == AccessState.BLOCKED
    assert state_of(world.alice_phone) == AccessState.QUARANTINED
    page = _text(admin.get(f"/devices/{world.carol_phone.pk}/"))
    assert (
        'Blocked by the rule "iOS < 17" on DeviceOS (Block): '
        "its DeviceOS 'iOS 16.7' is below 17." in page
    )


@pytest.mark.parametrize(
    "query, says",
    [("iOS =< 17", "'=<' is not a version operator"), ("iOS < 17b", "'17b' is not a version")],
)
def test_a_bad_version_rule_is_refused_before_anything_is_saved(world, admin, query, says):
    for step in ("preview", "save"):
        response = admin.post(
            "/rules/new",
            {"characteristic": "DeviceOS", "query_string": query, "access_level": "Block",
             step: "1", "previewed": f"DeviceOS\x1f{query}\x1fBlock"},
        )  # fmt: skip
        assert response.status_code == 200
        assert says in _text(response)
        assert response.context["form"].errors["query_string"]
    assert DeviceAccessRule.objects.count() == 1
    assert state_of(world.carol_phone) == AccessState.QUARANTINED


def test_the_test_box_explains_a_version_match(world, admin):
    admin.post("/rules/new", {"characteristic": "DeviceOS", "query_string": "iOS < 17",
                              "access_level": "Block", "previewed": "DeviceOS\x1fiOS < 17\x1fBlock",
                              "save": "1"})  # fmt: skip
    response = admin.get("/rules/test?device_os=iOS+16.7.10+20H350&info_received=on")
    result = response.context["result"]
    assert result["decision"].state == "Blocked"
    assert result["why"].startswith("DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'")
    assert "DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'" in _text(response)
    response = admin.get("/rules/test?device_os=iOS+17.0&info_received=on")
    assert response.context["result"]["decision"].state == "Quarantined"
    assert "DeviceOS 'iOS 17.0' (iOS 17.0) is not below 17: rule 'iOS < 17'" in _text(response)
