"""Celery tasks: periodic housekeeping (see CELERY_BEAT_SCHEDULE) and queued rule changes."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import actions
from .actions import AuditAfter
from .audit import SYSTEM
from .models import AccessState, MobileDevice, OrgSettings

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def purge_stale_quarantine() -> int:
    """Remove devices left in quarantine longer than the org setting (off by default)."""
    days = OrgSettings.load().purge_quarantined_after_days
    if days is None:
        return 0
    return actions.purge_quarantined(SYSTEM, older_than_days=days).count


@shared_task(ignore_result=True)
def end_discovery_windows() -> int:
    """Decide devices whose discovery window ended without a DeviceInformation."""
    org = OrgSettings.load()
    cutoff = timezone.now() - timedelta(minutes=org.discovery_window_minutes)
    stale = MobileDevice.objects.filter(
        access_state=AccessState.DEVICE_DISCOVERY, first_seen__lte=cutoff
    )
    if not stale.exists():
        return 0
    audit = AuditAfter(
        SYSTEM,
        "Discovery window ended",
        action="devices.discovery_ended",
        object_type="OrgSettings",
        object_id="1",
        object_repr="Organisation settings",
    )
    with transaction.atomic():
        return len(actions.reevaluate(stale, audit))


@shared_task(ignore_result=True)
def run_rule_change(job_id: int) -> None:
    """A rule change queued by the rule pages (devices.actions.queue_rule_change)."""
    actions.run_rule_change_job(job_id)


@shared_task(ignore_result=True)
def sync_directory() -> dict | None:
    """`eas sync-directory` every ECP_DIRECTORY_SYNC_MINUTES (beat, when LDAP is on).

    A directory that cannot answer, or a sync that would disable too many
    mailboxes, changes nothing and is logged; the next run tries again.
    """
    from .actions.directory import DIRECTORY, sync_directory
    from .directory import DirectoryUnavailable, search

    try:
        found, _ = search.read_all()
        return sync_directory(DIRECTORY, found).as_dict()
    except (DirectoryUnavailable, actions.ActionError) as exc:
        log.warning("directory sync skipped: %s", exc)
        return None


@shared_task(ignore_result=True)
def run_import(job_id: int) -> None:
    """A CSV import started on the import page (devices.actions.start_import)."""
    actions.run_import_job(job_id)
