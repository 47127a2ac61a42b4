"""The device search: every searched column, any case, kept current by the database."""

import pytest
from django.http import QueryDict

from devices import actions
from devices.audit import Actor
from devices.filters import SEARCH_FIELDS, DeviceFilterSet
from devices.models import AuditSource, Mailbox, MobileDevice

ADMIN = Actor(source=AuditSource.CLI)


@pytest.fixture
def phone(db):
    box = actions.create_mailbox(
        ADMIN, alias="jdoe", email="Jane.Doe@Contoso.com", display_name="Jane Dœ-Müller"
    ).obj
    MobileDevice.objects.create(mailbox=box, device_id="OTHERPHONE", device_type="Android")
    return MobileDevice.objects.create(
        mailbox=box,
        device_id="AbcPhone42",
        device_type="iPhone",
        device_model="iPhone15C2",
        device_os="iOS 17.4",
        user_agent="Apple-iPhone15C2/2104.61",
        friendly_name="Jane's work phone",
    )


def found(text: str) -> set[str]:
    queryset = MobileDevice.objects.exclude(device_id="OTHERPHONE")
    return set(
        DeviceFilterSet(QueryDict(f"q={text}"), queryset).qs.values_list("device_id", flat=True)
    )


@pytest.mark.parametrize(
    "text",
    [
        "abcphone",
        "IPHONE",
        "15c2",
        "ios 17",
        "2104.61",
        "WORK PHONE",
        "jdoe",
        "dœ-mü",
        "contoso.com",
    ],
)
def test_each_searched_column_matches_in_any_case(phone, text):
    assert found(text) == {"AbcPhone42"}


def test_every_search_field_is_covered():
    device_side = {f for f in SEARCH_FIELDS if not f.startswith("mailbox__")}
    assert device_side == {
        "device_id",
        "device_type",
        "device_model",
        "device_os",
        "user_agent",
        "friendly_name",
    }  # fmt: skip  (MobileDevice.search_text's columns)


def test_a_search_never_spans_two_columns(phone):
    assert found("iphone15c2 ios") == set()  # model, then OS: two columns
    assert found("%") == set() and found("_") == set()  # LIKE's wildcards are literal


def test_the_search_text_follows_every_change(phone):
    MobileDevice.objects.filter(pk=phone.pk).update(friendly_name="Galaxy loaner")
    assert found("galaxy") == {"AbcPhone42"} and found("work phone") == set()
    Mailbox.objects.filter(pk=phone.mailbox_id).update(display_name="Janet Smith")
    assert found("janet") == {"AbcPhone42"} and found("müller") == set()
