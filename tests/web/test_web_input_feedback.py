"""Bad or missing values are said so (issue 17, point 10): per_page, the sign-in name."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("path", ["/devices/", "/devices/quarantine/", "/mailboxes/", "/audit/"])
def test_a_per_page_that_is_no_page_size_is_said_so(world, hd, path):
    response = hd.get(f"{path}?per_page=abc")
    assert response.status_code == 200
    assert _messages(response) == [
        "per_page='abc' is not a page size: showing 50 per page. Choose one of 25, 50, 100, 200."
    ]
    assert "is not a page size" in response.content.decode()


@pytest.mark.parametrize("path", ["/devices/?per_page=100", "/mailboxes/", "/audit/?per_page="])
def test_a_good_or_missing_per_page_says_nothing(world, hd, path):
    assert _messages(hd.get(path)) == []


def test_the_sign_in_page_says_to_use_the_alias(db):
    page = Client().get("/accounts/login/").content.decode()
    assert "its alias (jdoe), not the mail address" in page


def test_with_a_directory_the_sign_in_page_takes_alias_or_address(db, settings):
    settings.AUTHENTICATION_BACKENDS = [
        "devices.directory.backend.DirectoryBackend",
        *settings.AUTHENTICATION_BACKENDS,
    ]
    page = Client().get("/accounts/login/").content.decode()
    assert "the alias (jdoe), the mail address (jdoe@example.org) or DOMAIN\\jdoe" in page


def test_an_empty_search_says_how_many_wait_in_all(world, hd):
    page = hd.get("/devices/quarantine/?q=nosuchdevice").content.decode()
    assert "0 of 4 waiting match the filters" in page
    assert "4 waiting for approval" in hd.get("/devices/quarantine/").content.decode()
