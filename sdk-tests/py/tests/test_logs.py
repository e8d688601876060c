"""client.log.list(): filters and cursor pagination (cursor is None on the last page)."""

import pytest

from qstash.errors import QStashError
from qstash.log import LogState

from support import is_status, make_rx, unique_path, wait_for_state


def publish_delivered(client, url, body):
    message_id = client.message.publish(url=url, body=body).message_id
    wait_for_state(client, message_id, "DELIVERED")
    return message_id


def test_filter_by_message_id(client, rx):
    path = unique_path("by-id")
    a = publish_delivered(client, rx.url + path, "a")
    b = publish_delivered(client, rx.url + path, "b")
    res = client.log.list(filter={"message_id": a})
    assert res.cursor is None
    assert [entry.state for entry in res.logs] == [LogState.DELIVERED, LogState.ACTIVE, LogState.CREATED]
    for entry in res.logs:
        assert entry.message_id == a
        assert entry.url == rx.url + path
        assert isinstance(entry.time, int)
    assert all(res.logs[i - 1].time >= res.logs[i].time for i in range(1, len(res.logs)))
    assert b not in {entry.message_id for entry in res.logs}


def test_filter_by_message_ids(client, rx):
    path = unique_path("by-ids")
    a = publish_delivered(client, rx.url + path, "a")
    b = publish_delivered(client, rx.url + path, "b")
    c = publish_delivered(client, rx.url + path, "c")
    res = client.log.list(filter={"message_ids": [a, c]})
    assert {entry.message_id for entry in res.logs} == {a, c}
    assert len(res.logs) == 6
    assert b not in {entry.message_id for entry in res.logs}


def test_filter_by_state(client, rx):
    path = unique_path("by-state")
    message_id = publish_delivered(client, rx.url + path, "s")
    delivered = client.log.list(filter={"message_id": message_id, "state": LogState.DELIVERED}).logs
    assert [entry.state for entry in delivered] == [LogState.DELIVERED]
    created = client.log.list(filter={"message_id": message_id, "state": LogState.CREATED}).logs
    assert [entry.state for entry in created] == [LogState.CREATED]
    assert client.log.list(filter={"message_id": message_id, "state": LogState.FAILED}).logs == []


def test_filter_by_url(client, rx):
    path_a = unique_path("url-a")
    path_b = unique_path("url-b")
    a = publish_delivered(client, rx.url + path_a, "a")
    publish_delivered(client, rx.url + path_b, "b")
    logs = client.log.list(filter={"url": rx.url + path_a}).logs
    assert len(logs) == 3
    assert all(entry.message_id == a and entry.url == rx.url + path_a for entry in logs)


def test_pagination_to_the_end(client, rx):
    path = unique_path("pages")
    url = rx.url + path
    ids = [publish_delivered(client, url, f"p{i}") for i in range(5)]

    seen = []
    sizes = []
    cursor = None
    pages = 0
    while True:
        res = client.log.list(filter={"url": url}, count=2, cursor=cursor)
        pages += 1
        assert pages <= 20, "pagination must end"
        sizes.append(len(res.logs))
        assert len(res.logs) <= 2
        seen.extend(res.logs)
        cursor = res.cursor
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor != ""

    assert len(seen) == 15, f"5 messages x 3 entries, page sizes {sizes}"
    assert len({(entry.message_id, entry.state) for entry in seen}) == 15, "no entry twice"
    assert {entry.message_id for entry in seen} == set(ids)
    assert all(seen[i - 1].time >= seen[i].time for i in range(1, len(seen)))
    assert (seen[0].message_id, seen[0].state) == (ids[4], LogState.DELIVERED)
    assert (seen[-1].message_id, seen[-1].state) == (ids[0], LogState.CREATED)


def test_exactly_full_last_page_has_no_cursor(client, rx):
    path = unique_path("exact")
    message_id = publish_delivered(client, rx.url + path, "e")
    full = client.log.list(filter={"message_id": message_id}, count=3)
    assert len(full.logs) == 3
    assert full.cursor is None
    first = client.log.list(filter={"message_id": message_id}, count=2)
    assert len(first.logs) == 2 and first.cursor is not None
    last = client.log.list(filter={"message_id": message_id}, count=2, cursor=first.cursor)
    assert [entry.state for entry in last.logs] == [LogState.CREATED]
    assert last.cursor is None


def test_no_match_means_empty_and_no_cursor(client):
    res = client.log.list(filter={"message_id": "msg_nothing_here"})
    assert res.logs == []
    assert res.cursor is None


def test_log_fields_of_a_delayed_message(client, rx):
    path = unique_path("fields")
    res = client.message.publish(
        url=rx.url + path,
        body="d",
        delay=300,
        retries=4,
        retry_delay="pow(2, retried) * 1000",
        method="PATCH",
        headers={"X-Log": "v"},
    )
    msg = client.message.get(res.message_id)
    (entry,) = client.log.list(filter={"message_id": res.message_id}).logs
    assert entry.state == LogState.CREATED
    assert entry.next_delivery_time == msg.not_before
    assert entry.method == "PATCH"
    assert entry.max_retries == 4
    assert entry.retry_delay_expression == "pow(2, retried) * 1000"
    assert {k.lower(): v for k, v in (entry.headers or {}).items()}.get("x-log") == ["v"]
    client.message.cancel(res.message_id)


def test_wrong_token_is_401(server):
    bad = server.client(token="not-a-valid-token")
    with pytest.raises(QStashError) as info:
        bad.log.list()
    assert is_status(info.value, 401), str(info.value)


def test_default_page_size_and_count_capped_at_100(server):
    # testUser2 has no other traffic in this module, so its totals are exact.
    client = server.client("testUser2")
    own = make_rx("testUser2")
    try:
        path = unique_path("page-size")
        ids = [client.message.publish(url=f"{own.url}{path}?i={i}", body=str(i)).message_id for i in range(40)]
        own.wait_for(path, 40)
        for message_id in ids:
            wait_for_state(client, message_id, "DELIVERED")
        first = client.log.list()
        assert len(first.logs) == 100
        assert first.cursor is not None
        rest = client.log.list(cursor=first.cursor)
        assert len(rest.logs) == 20
        assert rest.cursor is None
        capped = client.log.list(count=1000)
        assert len(capped.logs) == 100
        assert capped.cursor is not None
        assert len(client.log.list(count=30).logs) == 30
        own.assert_all_verified()
    finally:
        own.close()
