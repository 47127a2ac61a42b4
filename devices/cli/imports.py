"""import-mailboxes, import-devices: a migration from Exchange, from its own CSV exports."""

import argparse
import sys

from devices import actions
from devices.csv_import import CsvError, read_rows

from . import CLI, CliError, add_verb

FILE_HELP = """\
The file is what Export-Csv writes: a first line "#TYPE ..." is skipped; UTF-8
(with or without a BOM), UTF-16 or Windows-1252; ',' or ';' (-UseCulture)
between fields; column names in any case, in any order; other columns are
ignored. FILE - reads standard input. Every bad row is reported with its line
number and then nothing at all is imported."""

MAILBOX_HELP = f"""\
Columns (Get-CASMailbox):
  Alias, or else SamAccountName, the last part of Identity
      ("contoso.com/Users/jdoe") or the part of PrimarySmtpAddress before "@",
      whichever first is a valid alias (letters, digits, '.', '_', '-')
  PrimarySmtpAddress     required
  DisplayName or Name    default: the alias
  ActiveSyncEnabled      True or False; default True
  ActiveSyncAllowedDeviceIDs, ActiveSyncBlockedDeviceIDs
                         DeviceIds separated by spaces, ';' or ','

Export-Csv writes a list property as its type name ("System.String[]") unless
it is expanded; such a value is an error, not an empty list, so that no
allowed device is lost on the way. Export the lists joined:

  Get-CASMailbox -ResultSize Unlimited | Select-Object SamAccountName,
    PrimarySmtpAddress, DisplayName, ActiveSyncEnabled,
    @{{n='ActiveSyncAllowedDeviceIDs';e={{$_.ActiveSyncAllowedDeviceIDs -join ';'}}}},
    @{{n='ActiveSyncBlockedDeviceIDs';e={{$_.ActiveSyncBlockedDeviceIDs -join ';'}}}} |
    Export-Csv mailboxes.csv -Encoding UTF8

A mailbox whose alias exists already (with the same address) is updated: the
file's display name and ActiveSync switch, and its DeviceIds added to the
lists. A DeviceId already on one of the mailbox's lists stays where it is.

{FILE_HELP}"""

DEVICE_HELP = f"""\
Columns (Get-MobileDevice):
  the mailbox: MailboxIdentity or User when present, else the part of Identity
      before "ExchangeActiveSyncDevices" ("contoso.com/Users/jdoe/
      ExchangeActiveSyncDevices/iPhone§Appl..." or "jdoe\\ExchangeActiveSyncDevices\\..."),
      else UserDisplayName ("contoso.com/Users/Jane Doe"); each may name the
      mailbox by alias, primary SMTP address, DOMAIN\\alias or display name
  DeviceId               required
  DeviceType, DeviceModel, DeviceOS, DeviceOSLanguage, DeviceUserAgent,
  DeviceImei, FriendlyName (or DeviceFriendlyName), DeviceMobileOperator,
  DeviceTelephoneNumber, ClientVersion
  FirstSyncTime          first seen: ISO 8601, M/d/yyyy h:mm:ss tt (en-US) or
                         d.M.yyyy H:mm:ss; without an offset it is local time
  LastSuccessSync        last seen, when present (Get-MobileDeviceStatistics);
                         default: FirstSyncTime
  DeviceAccessState, DeviceAccessStateReason
                         Exchange's decision (see below)

Import the mailboxes first. A new partnership starts in the state Exchange
reported, and the decision engine then decides it: only a device whose state
changes here is mailed about. Known partnerships get the file's details.

Without --approve, Exchange's per-mailbox lists are mirrored: a device Allowed
with reason Individual goes on its mailbox's allowed list, one Blocked with
reason Individual on its blocked list; every other device is left to the
rules and the default access level. With --approve every device goes on its
mailbox's allowed list (so that today's devices keep syncing when quarantine
is switched on), except a Blocked one: an import never lets in a device that
Exchange keeps out.

{FILE_HELP}"""


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "import-mailboxes",
        import_mailboxes,
        "Import mailboxes from a Get-CASMailbox | Export-Csv file.",
        epilog=MAILBOX_HELP,
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", metavar="FILE.csv")

    p = add_verb(
        verbs,
        "import-devices",
        import_devices,
        "Import devices (partnerships) from a Get-MobileDevice | Export-Csv file.",
        epilog=DEVICE_HELP,
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument(
        "--approve",
        action="store_true",
        help="put every imported device (but a blocked one) on its mailbox's allowed list",
    )


def read_file(name: str) -> list:
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise CliError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    try:
        return read_rows(data)
    except CsvError as exc:
        raise CliError(f"{name}: {exc}") from None


def _report(out, result) -> None:
    counts = result.obj
    out.write(result.event.message)
    out.write(f"  allowed DeviceIds added: {counts.allowed_device_ids}")
    out.write(f"  blocked DeviceIds added: {counts.blocked_device_ids}")


def import_mailboxes(out, args) -> None:
    _report(out, actions.import_mailboxes(CLI, read_file(args.file)))


def import_devices(out, args) -> None:
    _report(out, actions.import_devices(CLI, read_file(args.file), approve=args.approve))
