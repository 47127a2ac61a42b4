"""The code pages of devices.eas.codepages: round trips and an independent decoder."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.eas import Element, decode, encode
from devices.eas.codepages import CODE_PAGES
from devices.eas.wbxml import PAGE_NAMES, tag_name, tag_token
from tests.wbxml_reference import LIBWBXML_SPELLING, reference_tree

TAGS = sorted(
    f"{PAGE_NAMES[page]}:{name}" for page, table in CODE_PAGES.items() for name in table.values()
)
LIBWBXML_UNKNOWN = {
    "Provision:AccountOnlyRemoteWipe",
    "MeetingResponse:ProposedStartTime",
    "MeetingResponse:ProposedEndTime",
    "MeetingResponse:SendResponse",
    "Search:Stores",
    "Search:SubstringOp",
    "Find:Find",
    "Find:Status",
}


@pytest.mark.parametrize("tag", TAGS)
def test_every_tag_round_trips_by_name(tag):
    page, token = tag_token(tag)
    assert tag_name(page, token) == tag


def test_it_has_the_pages_the_gate_answers_with():
    assert {PAGE_NAMES[p] for p in CODE_PAGES} >= {
        "AirSync",
        "FolderHierarchy",
        "Email",
        "AirSyncBase",
        "Provision",
        "Settings",
        "Ping",
        "GetItemEstimate",
        "ItemOperations",
    }


def test_tokens_are_in_the_tag_range():
    for table in CODE_PAGES.values():
        assert all(0x05 <= token <= 0x3F for token in table)
        assert len(set(table.values())) == len(table)


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_leaf = st.builds(
    lambda tag, content: Element(tag, content),
    st.sampled_from(TAGS),
    st.lists(_text.filter(bool) | st.binary(min_size=1), max_size=2),
)
_tree = st.recursive(
    _leaf,
    lambda children: st.builds(
        lambda tag, kids: Element(tag, kids), st.sampled_from(TAGS), st.lists(children, max_size=4)
    ),
    max_leaves=30,
)


def _merged(element: Element) -> Element:
    """Adjacent strings decode as separate STR_I chunks; compare them joined."""
    children = []
    for child in element.children:
        if isinstance(child, Element):
            children.append(_merged(child))
        else:
            children.append(child)
    return Element(element.tag, children)


@settings(max_examples=300, deadline=None)
@given(_tree)
def test_encode_then_decode_is_identity(tree):
    assert _merged(decode(encode(tree))) == _merged(tree)


def _spelled(tag: str) -> str:
    return LIBWBXML_SPELLING.get(tag, tag)


# libwbxml does not know the Find page (16.1) at all.
@pytest.mark.parametrize("page", sorted(set(CODE_PAGES) - {25}), ids=lambda p: PAGE_NAMES[p])
def test_libwbxml_reads_every_token_as_we_name_it(page):
    namespace = PAGE_NAMES[page]
    table = CODE_PAGES[page]
    known = [
        f"{namespace}:{name}"
        for _, name in sorted(table.items())
        if f"{namespace}:{name}" not in LIBWBXML_UNKNOWN
    ]
    root_tag = known[0]
    root = Element(root_tag, [Element(tag, ["x"]) for tag in known])
    tag, _, children = reference_tree(encode(root))
    assert tag == _spelled(root_tag)
    assert [child[0] for child in children] == [_spelled(t) for t in known]
    # Opaque-typed tags (MIME, Data, ConversationId...) come back base64-encoded.
    assert all(child[1] in ("x", "eA==") for child in children)
