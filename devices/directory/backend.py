"""django-auth-ldap's backend, as ECP uses it for panel sign-in and the gate.

What ECP adds to the library (as NetBox does, nothing an operator must relearn):
- the Django login is the entry's uid / sAMAccountName, lower-cased, however
  the user typed it (alias, alias@domain, DOMAIN\\alias), so one account is one
  login and one mailbox;
- every sign-in keeps the user's mailbox in step with the entry (created on
  first sign-in; address, display name, groups, disabled) through
  devices.actions.directory, audited as "directory";
- roles follow ECP_LDAP_ADMIN_GROUP / ECP_LDAP_HELPDESK_GROUP;
- a directory that cannot answer raises DirectoryUnavailable instead of
  looking like a wrong password.
"""

import logging

import ldap
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from devices.models import without_domain

from . import DirectoryUnavailable, entries

log = logging.getLogger(__name__)


@receiver(ldap_error)
def _unavailable(sender, context, exception, **kwargs):
    """Any LDAP error but a rejected password means the directory could not decide.

    django-auth-ldap reports it through this signal and would then answer "no such
    user or wrong password"; raising here stops that. (A wrong password never gets
    here: the library turns INVALID_CREDENTIALS into a plain failure.)
    """
    if context in ("authenticate", "populate_user", "search_for_user_dn"):
        log.warning("directory unavailable (%s): %r", context, exception)
        raise DirectoryUnavailable(f"directory unavailable: {type(exception).__name__}")


class DirectoryBackend(LDAPBackend):
    """Panel sign-in (AUTHENTICATION_BACKENDS) and the gate's ldap mode (`verify`)."""

    _for_gate = False  # verify(): a disabled account still verifies; an outage is raised

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or not password:
            return None
        try:
            user = super().authenticate(
                request, username=without_domain(username), password=password
            )
        except DirectoryUnavailable:
            if self._for_gate:
                raise
            # Panel sign-in: ECP's own logins (a local admin) must still get in while
            # the directory is down; the form says why a directory user could not.
            if request is not None:
                request.ecp_directory_unavailable = True
            return None
        entry = getattr(user, "directory_entry", None)
        if entry is not None and entry.disabled and not self._for_gate:
            return None  # a disabled account does not sign in to the panel
        return user

    def verify(self, request, login: str, password: str):
        """The gate's check: the user (its mailbox in step), or None for a wrong password.

        A disabled account still verifies here: its devices are then refused with
        the reason AccountDisabled, which the phone's user and the helpdesk can read.
        """
        self._for_gate = True
        return self.authenticate(request, username=login, password=password)

    def get_or_build_user(self, username, ldap_user):
        model = get_user_model()
        name = entries.username_of(ldap_user.attrs or {}) or username.lower()
        field = model.USERNAME_FIELD
        user = model.objects.filter(**{f"{field}__iexact": name}).first()
        if user is None:
            from devices.models import Mailbox

            mailbox = Mailbox.objects.filter(alias__iexact=name, user__isnull=False).first()
            user = mailbox.user if mailbox is not None else None
        if user is not None:
            return user, False
        return model(**{field: name}), True

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        try:
            groups = ldap_user.group_dns if self.settings.GROUP_SEARCH else set()
        except ldap.LDAPError as exc:
            raise DirectoryUnavailable(f"directory unavailable: {type(exc).__name__}") from exc
        entry = entries.entry(ldap_user.dn, ldap_user.attrs or {}, groups)
        if entry is None:
            log.warning("directory entry %s names no login (%s)", ldap_user.dn, "uid")
            return None
        from devices.actions.directory import signed_in

        signed_in(user, entry, groups_known=bool(self.settings.GROUP_SEARCH))
        user.directory_entry = entry
        return user
