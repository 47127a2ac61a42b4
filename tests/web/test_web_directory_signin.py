"""Panel sign-in for directory users, with roles from their groups (issue 14)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from devices.models import Mailbox
from devices.permissions import Role, role_for

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(login: str, password: str) -> tuple[Client, object]:
    client = Client()
    response = client.post("/accounts/login/", {"username": login, "password": password})
    return client, response


def signed_in_user(client):
    uid = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=uid) if uid else None


@pytest.mark.parametrize(
    ("login", "password", "role"),
    [
        ("alice", "alice-pw", Role.ORG_MANAGEMENT),  # ecp-admins
        ("bob", "bob-pw", Role.HELP_DESK),  # ecp-helpdesk
        ("dave", "dave-pw", Role.END_USER),  # sales only
        ("alice@example.org", "alice-pw", Role.ORG_MANAGEMENT),
        ("EXAMPLE\\bob", "bob-pw", Role.HELP_DESK),
    ],
)
def test_a_directory_user_signs_in_with_the_role_of_their_groups(directory, login, password, role):
    client, response = sign_in(login, password)
    assert response.status_code == 302, response.content.decode()[:500]
    user = signed_in_user(client)
    assert role_for(user) == role
    assert not user.has_usable_password()
    assert Mailbox.objects.get(user=user).directory_dn


def test_an_end_user_sees_my_devices_and_staff_see_the_quarantine(directory):
    client, _ = sign_in("dave", "dave-pw")
    assert client.get("/my/devices/").status_code == 200
    assert client.get("/devices/quarantine/").status_code in (403, 404, 302)
    staff, _ = sign_in("bob", "bob-pw")
    assert staff.get("/devices/quarantine/").status_code == 200


def test_a_role_follows_the_group_at_the_next_sign_in(directory):
    client, _ = sign_in("alice", "alice-pw")
    assert role_for(signed_in_user(client)) == Role.ORG_MANAGEMENT
    directory.add_member("ecp-admins", "bob")  # groupOfNames keeps one member at least
    directory.remove_member("ecp-admins", "alice")
    directory.add_member("sales", "alice")
    client, _ = sign_in("alice", "alice-pw")
    assert role_for(signed_in_user(client)) == Role.END_USER


def test_a_wrong_password_does_not_sign_in(directory):
    client, response = sign_in("alice", "wrong")
    assert response.status_code == 200
    assert signed_in_user(client) is None
    assert "correct username and password" in response.content.decode()


def test_a_disabled_directory_user_does_not_sign_in(directory):
    client, response = sign_in("carol", "carol-pw")
    assert signed_in_user(client) is None
    assert response.status_code == 200


def test_directory_down_says_directory_unavailable(directory):
    directory.stop()
    client, response = sign_in("alice", "alice-pw")
    assert response.status_code == 200
    assert signed_in_user(client) is None
    page = response.content.decode()
    assert "The directory is unavailable" in page
    assert "correct username and password" not in page


def test_a_local_admin_still_signs_in_beside_the_directory(directory):
    get_user_model().objects.create_superuser("root-admin", "r@example.org", "local-secret-1")
    client, response = sign_in("root-admin", "local-secret-1")
    assert response.status_code == 302
    assert role_for(signed_in_user(client)) == Role.ORG_MANAGEMENT


def test_an_admin_scopes_a_policy_to_a_directory_group_on_the_page(directory):
    from devices.models import AccessPolicy

    client, _ = sign_in("alice", "alice-pw")
    sales = directory.group_dn("sales")
    response = client.post(
        "/policies/new",
        {
            "name": "Sales",
            "default_access_level": "Block",
            "domains": "",
            "directory_groups": sales.upper(),
            "priority": "100",
        },
    )
    assert response.status_code == 302, response.content.decode()[:800]
    assert AccessPolicy.objects.get().directory_groups == [sales.lower()]
    bad = client.post(
        "/policies/new",
        {
            "name": "Bad",
            "default_access_level": "Block",
            "directory_groups": "sales",
            "priority": 1,
        },
    )
    assert "is not a directory group DN" in bad.content.decode()
    assert AccessPolicy.objects.count() == 1


def test_the_mailbox_page_shows_the_directory_entry_groups_and_policy(directory, cli_actor):
    from devices import actions
    from tests.cli_support import eas

    actions.create_policy(
        cli_actor,
        name="Sales",
        default_access_level="Quarantine",
        directory_groups=[directory.group_dn("sales")],
    )
    directory.set_disabled("dave")
    eas("sync-directory", "--force")
    client, _ = sign_in("alice", "alice-pw")
    dave = Mailbox.objects.get(alias="dave")
    page = client.get(f"/mailboxes/{dave.pk}/").content.decode()
    assert directory.user_dn("dave") in page
    assert "disabled or removed in the directory" in page
    assert 'title="cn=sales,ou=groups,dc=example,dc=org">sales</code>' in page
    assert "by its directory group cn=sales,ou=groups,dc=example,dc=org" in page


def test_a_local_admin_signs_in_while_the_directory_is_down(directory):
    get_user_model().objects.create_superuser("root-admin", "r@example.org", "local-secret-1")
    directory.stop()
    client, response = sign_in("root-admin", "local-secret-1")
    assert response.status_code == 302
    assert signed_in_user(client).get_username() == "root-admin"
