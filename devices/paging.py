"""Pagination that stays fast deep into a list of a million devices.

Django's Paginator fetches a page with OFFSET over the full query: every
skipped row is joined (mailbox, rule) and read from the table first. This one
finds the page's ids first (OFFSET over the ids alone, which the sort order's
index answers without reading the table), then reads those rows in full. Same
pages, same links, same count query.
"""

from django.core.paginator import Page, Paginator


class IdsFirstPaginator(Paginator):
    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        queryset = self.object_list
        ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        position = {pk: i for i, pk in enumerate(ids)}
        rows = sorted(queryset.filter(pk__in=ids), key=lambda row: position[row.pk]) if ids else []
        return self._get_page(rows, number, self)
