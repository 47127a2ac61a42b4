"""A preview that names the devices a change moves: the first 20 with links, the total, a CSV.

Rules, access policies and the org default share it: devices.actions builds
a DevicePreview (the counts, the first devices, an iterator over all), this
module turns it into the page's context and into the CSV of all of them.
"""

from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from .. import csv_export
from .wording import describe_counts, sentence

FIRST = 20
CSV_COLUMNS = (
    "mailbox",
    "display_name",
    "device_id",
    "device_type",
    "device_model",
    "model_name",
    "device_os",
    "access_state",
    "access_state_after",
    "page",
)


def preview_context(found, *, csv_url: str = "") -> dict:
    """The template's `preview`: sentence, phrases, total, the first devices, the rest's count."""
    phrases = describe_counts(found.counts)
    total = found.total
    return {
        "phrases": phrases,
        "sentence": sentence(phrases),
        "total": total,
        "first": found.first,
        "more": max(0, total - len(found.first)),
        "csv_url": csv_url if total else "",
    }


class _Echo:
    def write(self, value):
        return value


def _rows(found, request):
    writer = csv_export.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(CSV_COLUMNS)
    for d in found.devices():
        yield writer.writerow(
            [
                d.mailbox.alias,
                d.mailbox.display_name,
                d.device_id,
                d.device_type,
                d.device_model,
                d.marketing_name,
                d.device_os,
                d.preview_from,
                d.preview_to,
                request.build_absolute_uri(reverse("device-detail", args=[d.pk])),
            ]
        )


def preview_csv_response(found, request, name: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_rows(found, request), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
