"""The import page: Exchange's CSV exports of mailboxes and devices (eas import-mailboxes,
import-devices), checked line by line first, then imported by a worker with a progress bar.

Checking is a dry run (the import runs and is rolled back): every line says what it
would create or change, or why it is refused; one refused line and nothing can be
imported. Starting runs the same rows again, all or none.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from .. import actions
from ..forms import ImportForm
from ..models import ImportJob
from ..permissions import _get_or_404, can_manage_settings, staff_required
from ..web import actor_for
from .jobs import elapsed_words
from .wording import describe_counts, plural, sentence

IMPORT_READ_ONLY = gettext_lazy("Only Organization Management can import mailboxes and devices.")
SHOWN_LINES = 500


def _check_permission(request):
    if not can_manage_settings(request.user):
        raise PermissionDenied(IMPORT_READ_ONLY)


def _get_import_for_user(request, pk) -> ImportJob:
    _check_permission(request)
    return _get_or_404(ImportJob.objects.all(), pk)


def what(kind: str, n: int) -> str:
    return plural(n, "mailbox", "mailboxes") if kind == "mailboxes" else plural(n, "device")


def _shown(preview):
    """The first lines of a long file, every refused line among them."""
    if len(preview.lines) <= SHOWN_LINES:
        return preview.lines
    refused = preview.rejected[:SHOWN_LINES]
    rest = [o for o in preview.lines if o.outcome != "reject"][: SHOWN_LINES - len(refused)]
    return sorted(refused + rest, key=lambda o: o.line)


@login_required
@staff_required
def import_page(request):
    _check_permission(request)
    if request.method != "POST":
        return render(request, "devices/import.html", {"form": ImportForm()})
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "devices/import.html", {"form": form})
    kind, approve = form.cleaned_data["kind"], form.cleaned_data["approve"]
    job, preview = actions.check_import(
        actor_for(request),
        kind,
        form.rows,
        file_name=form.cleaned_data["file"].name,
        approve=approve and kind == "devices",
    )
    return render(
        request,
        "devices/import.html",
        {
            "form": ImportForm(initial={"kind": kind, "approve": approve}),
            "job": job,
            "preview": preview,
            "lines": _shown(preview),
            "more_lines": max(0, len(preview.lines) - SHOWN_LINES),
            "to_create": preview.number("create"),
            "to_update": preview.number("update"),
            "n_rejected": len(preview.rejected),
            "moves": sentence(describe_counts(preview.moves)) if preview.ok else "",
            "noun": "mailbox" if kind == "mailboxes" else "device",
            "count_words": what(kind, len(preview.lines)),
        },
    )


@require_POST
@login_required
@staff_required
def import_start(request, pk):
    job = _get_import_for_user(request, pk)
    actions.start_import(actor_for(request), job)
    return redirect(f"/import/{job.pk}/")


def _describe(job: ImportJob) -> str:
    n = job.lines
    approved = ", approved" if job.approve else ""
    return f"Importing {what(job.kind, n)} from {job.file_name or 'the file'}{approved}"


@require_GET
@login_required
@staff_required
def import_detail(request, pk):
    job = _get_import_for_user(request, pk)
    return render(
        request,
        "devices/import_job.html",
        {
            "job": job,
            "description": _describe(job),
            "elapsed": elapsed_words(job.elapsed_seconds()),
        },
    )


@require_GET
@login_required
@staff_required
def import_status(request, pk):
    job = _get_import_for_user(request, pk)
    return JsonResponse(
        {
            "status": job.status,
            "progress": job.progress,
            "message": job.message,
            "error": job.error,
            "elapsed": job.elapsed_seconds(),
        }
    )
