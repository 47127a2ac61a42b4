"""devices.paging: the page's ids first, then its rows; the same pages as OFFSET gives."""

import pytest
from django.core.paginator import EmptyPage, Paginator

from devices import actions
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from devices.paging import IdsFirstPaginator

ADMIN = Actor(source=AuditSource.CLI)


@pytest.fixture
def devices(db):
    boxes = [
        actions.create_mailbox(ADMIN, alias=a, email=f"{a}@contoso.com").obj
        for a in ("alice", "bob", "carol")
    ]
    for i in range(23):
        MobileDevice.objects.create(
            mailbox=boxes[i % 3],
            device_id=f"PHONE{i:02d}",
            device_type=("iPhone", "Android", "iPad")[i % 3],
            device_model=f"M{i % 4}",  # ties: the sort must end in a unique column
        )
    return MobileDevice.objects.select_related("mailbox")


@pytest.mark.parametrize(
    "order", [("device_model", "id"), ("-device_model", "-id"), ("mailbox__alias", "device_key")]
)
@pytest.mark.parametrize("per_page,orphans", [(5, 0), (5, 2), (50, 0)])
def test_every_page_holds_what_offset_gives(devices, order, per_page, orphans):
    queryset = devices.order_by(*order)
    ours = IdsFirstPaginator(queryset, per_page, orphans=orphans)
    django = Paginator(queryset, per_page, orphans=orphans)
    assert ours.num_pages == django.num_pages
    for number in ours.page_range:
        page, expected = ours.page(number), django.page(number)
        assert [d.pk for d in page] == [d.pk for d in expected]
        assert (page.has_next(), page.start_index(), page.end_index()) == (
            expected.has_next(),
            expected.start_index(),
            expected.end_index(),
        )
        assert all(d.mailbox.alias for d in page)  # select_related kept


def test_a_filtered_list_and_the_pages_beyond_it(devices, django_assert_num_queries):
    queryset = devices.filter(device_type="iPad").order_by("id")
    paginator = IdsFirstPaginator(queryset, 3)
    assert paginator.count == 7
    with django_assert_num_queries(2):  # the ids, then the rows with their mailboxes
        page = paginator.page(3)
        assert [d.device_id for d in page] == ["PHONE20"]
        assert page[0].mailbox.alias == "carol"
    with pytest.raises(EmptyPage):
        paginator.page(4)
    assert list(paginator.get_page(99)) == list(page)  # get_page: the last page
    assert list(IdsFirstPaginator(devices.filter(device_type="none"), 3).get_page(1)) == []
