"""The one place that changes access state.

Every public function here runs in one transaction: it validates its input
(raising ActionError and changing nothing on bad input), makes the change,
re-evaluates the partnerships the change can affect set-based, records every
state change, writes one audit event, and hands the transitions to
devices.notify so that mails are queued in the same transaction. Views, CLI
verbs, API views and the gate all call these functions with an Actor.

One module per object type; this package exports them all, so callers write
`from devices import actions; actions.allow_device(...)`.
"""

from .accounts import create_api_token, revoke_api_token
from .base import (
    MAX_DEVICE_ID,
    ActionError,
    AuditAfter,
    ConflictError,
    Result,
    Transition,
    device_snapshot,
    mailbox_snapshot,
    org_snapshot,
    parse_access_level,
    parse_access_state,
    parse_characteristic,
    rule_snapshot,
)
from .gate import (
    DEVICE_INFORMATION_FIELDS,
    Contact,
    contact_changes,
    record_contact,
    touch_last_seen,
)
from .imports import (
    ImportCounts,
    ImportPreview,
    ImportRowsError,
    import_devices,
    import_mailboxes,
    preview_import,
)
from .jobs import (
    check_import,
    queue_rule_change,
    run_import_job,
    run_rule_change_job,
    start_import,
)
from .lifecycle import grandfather_devices, purge_quarantined
from .links import LinkOutcome, LinkRefused, OwnerActor, use_link
from .mail import resend_notification
from .mailboxes import create_mailbox, parse_language, set_mailbox, set_mailbox_language
from .org import preview_org_settings, preview_org_settings_devices, set_org_settings
from .partnerships import (
    allow_and_replace,
    allow_device,
    block_device,
    list_of,
    remove_device,
    undo_device_list,
)
from .policies import (
    add_org_device_id,
    create_policy,
    delete_policy,
    preview_policy,
    preview_policy_removal,
    remove_org_device_id,
    set_mailbox_policy,
    update_policy,
)
from .reevaluation import DevicePreview, describe_changes, preview, preview_devices, reevaluate
from .rules import (
    clean_query_string,
    create_rule,
    delete_rule,
    preview_rule,
    preview_rule_devices,
    preview_rule_removal,
    preview_rule_removal_devices,
    update_rule,
)
from .self_service import may_self_approve, self_approve

__all__ = [
    "DEVICE_INFORMATION_FIELDS",
    "MAX_DEVICE_ID",
    "ActionError",
    "AuditAfter",
    "ConflictError",
    "Contact",
    "ImportCounts",
    "ImportPreview",
    "ImportRowsError",
    "LinkOutcome",
    "LinkRefused",
    "OwnerActor",
    "Result",
    "Transition",
    "add_org_device_id",
    "allow_and_replace",
    "allow_device",
    "block_device",
    "contact_changes",
    "create_api_token",
    "create_mailbox",
    "create_policy",
    "create_rule",
    "delete_policy",
    "delete_rule",
    "may_self_approve",
    "check_import",
    "preview_import",
    "queue_rule_change",
    "run_import_job",
    "start_import",
    "describe_changes",
    "device_snapshot",
    "grandfather_devices",
    "import_devices",
    "import_mailboxes",
    "mailbox_snapshot",
    "org_snapshot",
    "parse_access_level",
    "parse_access_state",
    "parse_characteristic",
    "preview",
    "list_of",
    "undo_device_list",
    "preview_org_settings",
    "preview_policy",
    "preview_policy_removal",
    "preview_org_settings_devices",
    "preview_rule",
    "preview_rule_devices",
    "clean_query_string",
    "preview_rule_removal",
    "preview_rule_removal_devices",
    "preview_devices",
    "DevicePreview",
    "purge_quarantined",
    "record_contact",
    "reevaluate",
    "remove_device",
    "remove_org_device_id",
    "resend_notification",
    "revoke_api_token",
    "rule_snapshot",
    "run_rule_change_job",
    "self_approve",
    "set_mailbox",
    "set_mailbox_language",
    "parse_language",
    "set_mailbox_policy",
    "set_org_settings",
    "touch_last_seen",
    "update_policy",
    "update_rule",
    "use_link",
]
