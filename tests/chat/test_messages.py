"""Reading captured chat message versions: Microsoft's documented messages parse into versions with the right
identity and state; hosted contents and text come out of HTML bodies; anything else is refused with a
reason, never another exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verbatim.chat.meetings import thread_id_from_join_url
from verbatim.chat.messages import MessageRejected, hosted_content_ids, parse_version, plain_text
from verbatim.chat.terms import query_terms, terms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "chats"


def _fixture(name: str) -> Any:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def test_documented_export_items_parse_as_posted_versions_keyed_by_etag() -> None:
    # Source: chats-getallmessages.md example response
    page = _fixture("chats-getallmessages.json")
    versions = [parse_version(json.dumps(item)) for item in page["value"]]
    assert [v.key for v in versions] == [
        ("19:3c9e92a344704332bbf5bda58f4d37b1@thread.v2", "1621973534864", "1621973534864"),
        (
            "19:0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5_0d7c63d3-1306-4eec-8f21-588a70fb6ef1@unq.gbl.spaces",
            "1622762567488",
            "1622762567488",
        ),
    ]
    assert all(v.state == "posted" for v in versions)
    assert versions[0].text == "Hello user2, user 3" and versions[0].sender_id == "0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5"


def test_the_documented_decrypted_notification_parses_and_keeps_its_exact_text() -> None:
    # Source: teams-changenotifications-chatmessage.md, decrypted payload
    raw = json.dumps(_fixture("notification-decrypted-chatmessage.json"), indent=1)
    version = parse_version(raw)
    assert version.raw == raw and version.etag == "1612289992105" and version.text == "test"
    assert version.sender_name == "Ramjot Singh"


def test_edits_and_deletions_are_versions_of_their_own_state() -> None:
    base = _fixture("notification-decrypted-chatmessage.json")
    edited = {**base, "etag": "1612290000000", "lastEditedDateTime": "2021-02-02T18:20:00Z"}
    deleted = {
        **edited,
        "etag": "1612290100000",
        "deletedDateTime": "2021-02-02T18:21:40Z",
        "body": {"contentType": "text", "content": ""},
    }
    states = [parse_version(json.dumps(m)).state for m in (base, edited, deleted)]
    assert states == ["posted", "edited", "deleted"]
    # without an etag, the version is named by lastModifiedDateTime in Unix milliseconds
    no_etag = {k: v for k, v in deleted.items() if k != "etag"}
    no_etag["lastModifiedDateTime"] = "2021-02-02T18:21:40.123Z"
    assert parse_version(json.dumps(no_etag)).etag == "1612290100123"


def test_a_channel_message_is_not_a_chat_message() -> None:
    # Microsoft's published encrypted vector holds a channel reply: chatId null
    channel = {"id": "1625126194597", "chatId": None, "createdDateTime": "2021-07-01T07:56:34.597Z"}
    with pytest.raises(MessageRejected):
        parse_version(json.dumps(channel))


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_is_refused_with_a_reason(text: str) -> None:
    with contextlib.suppress(MessageRejected):
        parse_version(text)


@given(
    st.dictionaries(
        st.sampled_from(["id", "chatId", "etag", "createdDateTime", "deletedDateTime", "body", "from", "x"]),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=30), st.dictionaries(st.text(max_size=5), st.text(max_size=5))
        ),
        max_size=8,
    )
)
def test_arbitrary_objects_are_parsed_or_refused_never_crash(data: dict[str, Any]) -> None:
    try:
        version = parse_version(json.dumps(data))
    except MessageRejected:
        return
    assert version.chat_id.startswith("19:") and version.message_id.isdigit()


def test_hosted_contents_and_text_come_out_of_an_html_body() -> None:
    chat, message, hosted = "19:2da4c29f6d7041eca70b638b43d45437@thread.v2", "1615971548136", "aWQ9eF8wLXd1cy1kOS1lNTRm"
    # Source: chat-list-messages.md example body (shortened hosted content id)
    html = (
        '<div><div><div><span><img height="63" src="https://graph.microsoft.com/v1.0/chats/'
        f'{chat}/messages/{message}/hostedContents/{hosted}/$value" width="67"></span></div></div></div>'
    )
    assert hosted_content_ids(chat, message, html) == (hosted,)
    assert hosted_content_ids(chat, "999", html) == ()  # another message's image is not ours to fetch
    assert plain_text("html", "<p>Buy&nbsp;500</p><p>at <b>par</b></p>") == "Buy 500 at par"


def test_terms_are_folded_words_each_once() -> None:
    assert terms("Buy 500 at PAR, buy at Par!") == ["buy", "500", "at", "par"]
    assert terms("\uff26\uff55\uff4c\uff4c") == ["full"]  # fullwidth letters fold to ASCII
    assert query_terms("  PAR  buy ") == ["par", "buy"]


def test_the_thread_id_comes_out_of_a_documented_join_url() -> None:
    # Source: msteams-docs meeting chat example (joinWebUrl of an online meeting)
    meeting = _fixture("chat-get-meeting.json")
    assert thread_id_from_join_url(meeting["onlineMeetingInfo"]["joinWebUrl"]) == meeting["id"]
    assert thread_id_from_join_url("https://teams.microsoft.com/l/meetup-join/19:meeting_abc@thread.v2/0") == (
        "19:meeting_abc@thread.v2"
    )
    for bad in (None, "", "https://example.com/l/chat/19:x@thread.v2/0", "https://teams.microsoft.com/l/meetup-join/x"):
        assert thread_id_from_join_url(bad) is None
