"""The directory (LDAP / Active Directory) and the mail server as sources of logins.

- `entries`: a directory entry as ECP reads it (login name, address, display
  name, disabled, groups), from LDAP attributes; pure.
- `backend`: django-auth-ldap's backend, for panel sign-in and the gate's ldap
  mode; a sign-in keeps the user's mailbox and roles in step with the entry.
- `search`: every user and group, page by page, for `eas sync-directory`.
- `upstream`: the gate's upstream mode, an authenticated OPTIONS to the real
  EAS server.

Changes to mailboxes go through devices.actions.directory, as every change does.
"""


class DirectoryUnavailable(Exception):
    """The directory or the upstream server could not answer: nothing can be decided.

    The gate answers 503 (never 401: the password may well be right), panel
    sign-in says "directory unavailable", a sync changes nothing.
    """
