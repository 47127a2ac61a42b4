"""The progress of a rule change that runs as a job (devices.actions.queue_rule_change).

The page reloads itself while the job is queued or running: static/js/ecp.js
polls /jobs/<pk>.json, and without JavaScript a meta refresh does it.
"""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..models import RuleChangeJob
from ..permissions import get_job_for_user


def describe(job: RuleChangeJob) -> str:
    """E.g. 'Creating rule iPhone (DeviceType): Allow — 100,000 devices change state'."""
    p = job.params
    new = f"{p.get('query_string')} ({p.get('characteristic')}): {p.get('access_level')}"
    if job.kind == RuleChangeJob.Kind.CREATE:
        what = f"Creating rule {new}"
    elif job.kind == RuleChangeJob.Kind.UPDATE:
        what = f"Changing rule {p.get('rule', '')} to {new}"
    else:
        what = f"Deleting rule {p.get('rule', '')}"
    n = job.devices_total
    return f"{what} — {n:,} device{'s' if n != 1 else ''} change state"


def elapsed_words(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


@require_GET
@login_required
def job_detail(request, pk):
    job = get_job_for_user(request, pk)
    return render(
        request,
        "devices/job_detail.html",
        {
            "job": job,
            "description": describe(job),
            "elapsed": elapsed_words(job.elapsed_seconds()),
        },
    )


@require_GET
@login_required
def job_status(request, pk):
    job = get_job_for_user(request, pk)
    return JsonResponse(
        {
            "status": job.status,
            "progress": job.progress,
            "message": job.message,
            "error": job.error,
            "elapsed": job.elapsed_seconds(),
        }
    )
