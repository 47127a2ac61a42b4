"""The number of quarantined devices, counted once per request.

The menu's badge and the quarantine list's "N of M waiting" show the same
number; whichever asks first counts, the other reads it from the request.
"""

from devices.models import AccessState, MobileDevice

_ATTRIBUTE = "_ecp_waiting_count"


def waiting_count(request) -> int:
    """How many devices wait in quarantine (one COUNT per request at most)."""
    if request is not None and hasattr(request, _ATTRIBUTE):
        return getattr(request, _ATTRIBUTE)
    count = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).count()
    remember_waiting_count(request, count)
    return count


def remember_waiting_count(request, count: int) -> None:
    """A count the view made anyway (the unfiltered quarantine list's paginator)."""
    if request is not None:
        setattr(request, _ATTRIBUTE, count)
