"""List pages run a fixed number of queries, whatever the page size or the data."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from devices import actions
from devices.models import MobileDevice

from .conftest import SETUP, contact


def _more_devices(world, n):
    boxes = [world.alice_box, world.bob_box, world.carol_box]
    for i in range(n):
        contact(boxes[i % 3], f"EXTRA{i:04d}", ("iPhone", "Android", "iPad")[i % 3], f"M{i % 5}")
    for i in range(3):
        actions.create_rule(
            SETUP, characteristic="DeviceOS", query_string=f"OS{i}*", access_level="Block"
        )


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


# url, queries for a Help Desk login (session, user, groups, page's own queries).
PAGES = [
    # session, user, role (groups), families, count (which is also the quarantine
    # badge's), the page's ids and its rows (devices.paging), and the approved devices
    # the page's devices probably replace
    ("/devices/quarantine/?per_page={n}", 8),
    # filtered: the badge's count of the whole quarantine ("3 of 11 waiting match")
    ("/devices/quarantine/?per_page={n}&device_type=iPhone", 9),
    # session, user, role (groups), quarantine badge, families, count, page ids, rows
    ("/devices/?per_page={n}", 8),
    ("/devices/?per_page={n}&q=a&device_type=iPhone&sort=model", 8),
    # session, user, role, badge, count, page (with device counts)
    ("/mailboxes/?per_page={n}", 6),
    # session, user, role, badge, count, page, devices decided per rule
    ("/rules/", 7),
    # session, user, role, badge, counts per state, oldest waiting, per day
    ("/", 7),
    # session, user, role, badge, one page of events with their state-change counts
    ("/audit/?per_page={n}", 5),
    ("/audit/?per_page={n}&action=device.&source=gate&from=2000-01-01&to=2100-12-31", 5),
    # session, user, role, badge, policies with their member counts, org settings
    ("/policies/", 6),
]


@pytest.mark.parametrize(("template", "expected"), PAGES)
def test_list_pages_run_a_fixed_number_of_queries(world, template, expected):
    client = Client()
    client.force_login(world.helpdesk)
    small = _queries(client, template.format(n=25))
    _more_devices(world, 60)
    assert MobileDevice.objects.count() > 60
    large = _queries(client, template.format(n=200))
    assert small == large == expected


def test_my_devices_runs_a_fixed_number_of_queries(world):
    client = Client()
    client.force_login(world.alice)
    # session, user, mailbox, org settings, devices (with their rules), and the nav's
    # role lookup (groups, then "has a mailbox")
    small = _queries(client, "/my/devices/")
    for i in range(20):
        contact(world.alice_box, f"ALICEMORE{i}", "iPhone", "iPhone15,2")
    assert _queries(client, "/my/devices/") == small == 7
