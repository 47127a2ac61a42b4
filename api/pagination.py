"""Page numbers with a total count for the lists; a cursor for the audit log.

The audit log only grows: a cursor stays fast and stable however deep a script
pages, where an OFFSET would slow down and skip rows as events arrive.
"""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class AuditCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("time", "id")  # oldest first, like the CLI's get-audit-log
