"""Rule changes too big for one request: queued as a RuleChangeJob, run by a worker.

The view decides (from the preview's count) that a change goes through a job;
queue_rule_change records it and queues devices.tasks.run_rule_change once
the row is committed. run_rule_change_job calls the same action the view
would have called, as the same actor, and records the outcome on the job. A
failed action changes nothing: its own transaction rolls back.
"""

import logging

from django.db import transaction
from django.utils import timezone

from .. import progress
from ..audit import Actor
from ..csv_import import Row
from ..models import DeviceAccessRule, ImportJob, RuleChangeJob
from ..permissions import can_manage_rules, can_manage_settings
from .base import ActionError
from .imports import import_devices, import_mailboxes
from .rules import create_rule, delete_rule, update_rule

log = logging.getLogger(__name__)

Kind = RuleChangeJob.Kind
Status = RuleChangeJob.Status


def queue_rule_change(
    actor: Actor,
    kind: str,
    *,
    rule: DeviceAccessRule | None = None,
    values: dict | None = None,
    devices_total: int = 0,
) -> RuleChangeJob:
    """Record the change as a job and hand it to the worker after commit."""
    params = dict(values or {})
    if rule is not None:
        params.update(rule_id=rule.pk, rule=str(rule))
    job = RuleChangeJob.objects.create(
        kind=kind,
        params=params,
        user_id=actor.user_id,
        user_name=actor.name,
        source=actor.source,
        client_ip=actor.ip,
        request_id=actor.request_id,
        devices_total=devices_total,
    )
    transaction.on_commit(lambda: _queue(job.pk))
    return job


def _queue(job_pk: int) -> None:
    # A broker outage must not leave the job queued forever with nobody to run it.
    from ..tasks import run_rule_change

    try:
        run_rule_change.delay(job_pk)
    except Exception:
        log.exception("could not queue rule change job %s", job_pk)
        _finish(job_pk, Status.FAILED, error="The task queue did not answer; nothing was changed.")


def _finish(job_pk: int, status: str, *, message: str = "", error: str = "", model=None) -> None:
    extra = {"progress": 100} if status == Status.DONE else {}
    if model is ImportJob:
        extra["rows"] = []  # run: the file's data now lives in the mailboxes and devices
    (model or RuleChangeJob).objects.filter(pk=job_pk).update(
        status=status, message=message, error=error, finished_at=timezone.now(), **extra
    )


def _actor(job: RuleChangeJob) -> Actor:
    return Actor(user=job.user, source=job.source, ip=job.client_ip, request_id=job.request_id)


def _run(job: RuleChangeJob):
    if job.user is None:
        raise ActionError("The user who asked for this change no longer exists.")
    if not can_manage_rules(job.user):
        raise ActionError(f"{job.user_name} may no longer change device access rules.")
    actor, params = _actor(job), job.params
    values = {
        k: params[k] for k in ("characteristic", "query_string", "access_level") if k in params
    }
    if job.kind == Kind.CREATE:
        return create_rule(actor, **values)
    rule = DeviceAccessRule.objects.filter(pk=params.get("rule_id")).first()
    if rule is None:
        raise ActionError(f"The rule {params.get('rule', '')} no longer exists.")
    if job.kind == Kind.UPDATE:
        return update_rule(actor, rule, **values)
    return delete_rule(actor, rule)


def run_rule_change_job(job_pk: int) -> RuleChangeJob | None:
    """Run a queued job once: a second delivery of the same task finds it taken."""
    claimed = RuleChangeJob.objects.filter(pk=job_pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = RuleChangeJob.objects.select_related("user").get(pk=job_pk)
    try:
        with progress.reporting(RuleChangeJob, job_pk):
            result = _run(job)
    except ActionError as e:
        _finish(job_pk, Status.FAILED, error=str(e))
    except Exception as e:
        log.exception("rule change job %s failed", job_pk)
        _finish(
            job_pk,
            Status.FAILED,
            error=f"Unexpected error ({type(e).__name__}); nothing was changed.",
        )
    else:
        _finish(job_pk, Status.DONE, message=result.event.message if result.event else "")
    job.refresh_from_db()
    return job


# ---------------------------------------------------------------------------
# imports from the import page: checked (a dry run) first, run by the worker once started


def check_import(actor: Actor, kind: str, rows: list, *, file_name: str = "", approve=False):
    """Keep the file's rows as a checked ImportJob, and what importing them would do."""
    from .imports import preview_import

    preview = preview_import(actor, kind, rows, approve=approve)
    job = ImportJob.objects.create(
        kind=kind,
        file_name=file_name[:255],
        rows=[[row.line, dict(row)] for row in rows],
        lines=len(rows),
        approve=approve,
        user_id=actor.user_id,
        user_name=actor.name,
        source=actor.source,
        client_ip=actor.ip,
        request_id=actor.request_id,
    )
    return job, preview


def start_import(actor: Actor, job: ImportJob) -> bool:
    """Queue a checked import once (False: it was started already)."""
    started = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.CHECKED).update(
        status=ImportJob.Status.QUEUED
    )
    if started:
        transaction.on_commit(lambda: _queue_import(job.pk))
    return bool(started)


def _queue_import(job_pk: int) -> None:
    from ..tasks import run_import

    try:
        run_import.delay(job_pk)
    except Exception:
        log.exception("could not queue import job %s", job_pk)
        _finish(
            job_pk,
            Status.FAILED,
            error="The task queue did not answer; nothing was imported.",
            model=ImportJob,
        )


def run_import_job(job_pk: int) -> ImportJob | None:
    """Run a queued import once; every row is checked again, and all or none is imported."""
    claimed = ImportJob.objects.filter(pk=job_pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("user").get(pk=job_pk)
    try:
        if job.user is None:
            raise ActionError("The user who asked for this import no longer exists.")
        if not can_manage_settings(job.user):
            raise ActionError(f"{job.user_name} may no longer import.")
        actor = Actor(user=job.user, source=job.source, ip=job.client_ip, request_id=job.request_id)
        rows = [Row(values, line) for line, values in job.rows]
        with progress.reporting(ImportJob, job_pk):
            if job.kind == ImportJob.Kind.MAILBOXES:
                result = import_mailboxes(actor, rows)
            else:
                result = import_devices(actor, rows, approve=job.approve)
    except ActionError as e:
        _finish(job_pk, Status.FAILED, error=str(e), model=ImportJob)
    except Exception as e:
        log.exception("import job %s failed", job_pk)
        _finish(
            job_pk,
            Status.FAILED,
            error=f"Unexpected error ({type(e).__name__}); nothing was imported.",
            model=ImportJob,
        )
    else:
        counts = result.obj
        message = (
            f"{result.event.message}; allowed DeviceIds added: {counts.allowed_device_ids},"
            f" blocked DeviceIds added: {counts.blocked_device_ids}."
        )
        _finish(job_pk, Status.DONE, message=message, model=ImportJob)
    job.refresh_from_db()
    return job
