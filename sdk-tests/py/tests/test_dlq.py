"""Retries on the controllable clock and the DLQ API of the official SDK: dlq.list, dlq.get,
dlq.delete, dlq.delete_many. (qstash-py 3.4.0 has no DLQ retry method.)"""

import pytest

from qstash.errors import QStashError
from qstash.log import LogState

from support import Reply, is_status, message_states, unique_path, wait_for_state


def fail_now(client, rx, path, **extra):
    """Publishes with retries=0 to a path that answers 500: straight to the DLQ."""
    rx.script(path, Reply(status=500, body=f"boom {path}"))
    message_id = client.message.publish(url=rx.url + path, body=f"body {path}", retries=0, **extra).message_id
    wait_for_state(client, message_id, "FAILED")
    rx.wait_for(path, 1)
    messages = client.dlq.list(filter={"message_id": message_id}).messages
    assert len(messages) == 1, f"one DLQ entry for {message_id}"
    return message_id, messages[0].dlq_id


def test_retries_1_then_dlq(server, client, rx):
    path = unique_path("r1")
    rx.script(path, Reply(status=500, body="first failure"), Reply(status=503, body="second failure"))
    message_id = client.message.publish(
        url=rx.url + path, body="payload", retries=1, headers={"X-Kept": "kept"}
    ).message_id
    rx.wait_for(path, 1)
    wait_for_state(client, message_id, "RETRY")
    server.advance("11s")
    rx.assert_quiet(path, 1)
    server.advance("2s")
    attempts = rx.wait_for(path, 2)
    assert [a.headers["upstash-retried"] for a in attempts] == ["0", "1"]
    assert all(a.body == "payload" and a.headers["upstash-message-id"] == message_id for a in attempts)

    states = wait_for_state(client, message_id, "FAILED")
    assert states == ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]

    listed = client.dlq.list(filter={"message_id": message_id})
    assert listed.cursor is None
    (entry,) = listed.messages
    assert entry.dlq_id
    assert entry.message_id == message_id
    assert entry.url == rx.url + path
    assert entry.method == "POST"
    assert entry.body == "payload"
    assert entry.max_retries == 1
    assert entry.response_status == 503
    assert entry.response_body == "second failure"
    assert {k.lower(): v for k, v in (entry.headers or {}).items()}["x-kept"] == ["kept"]

    got = client.dlq.get(entry.dlq_id)
    assert got.dlq_id == entry.dlq_id
    assert got.message_id == message_id
    assert got.response_status == 503
    assert got.response_body == "second failure"
    assert got.body == "payload"
    rx.assert_quiet(path, 2)


def test_retries_2_default_backoff(server, client, rx):
    path = unique_path("r2")
    rx.script(path, Reply(status=500), Reply(status=500), Reply(status=500))
    message_id = client.message.publish(url=rx.url + path, body="x", retries=2).message_id
    wait_for_state(client, message_id, "RETRY")
    server.advance("11s")
    rx.assert_quiet(path, 1)
    server.advance("2s")
    rx.wait_for(path, 2)
    wait_for_state(client, message_id, "RETRY", times=2)
    server.advance("140s")
    rx.assert_quiet(path, 2)
    server.advance("10s")
    attempts = rx.wait_for(path, 3)
    assert [a.headers["upstash-retried"] for a in attempts] == ["0", "1", "2"]
    wait_for_state(client, message_id, "FAILED")
    (entry,) = client.dlq.list(filter={"message_id": message_id}).messages
    assert entry.max_retries == 2
    assert entry.response_status == 500


def test_non_retryable_489(server, client, rx):
    path = unique_path("nonretryable")
    rx.script(path, Reply(status=489, headers={"Upstash-NonRetryable-Error": "true"}, body="do not retry"))
    message_id = client.message.publish(url=rx.url + path, body="x", retries=3).message_id
    assert wait_for_state(client, message_id, "FAILED") == ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    server.advance("1h")
    rx.assert_quiet(path, 1)
    (entry,) = client.dlq.list(filter={"message_id": message_id}).messages
    assert entry.response_status == 489
    assert entry.response_body == "do not retry"


def test_list_filters_and_pagination(client, rx):
    path = unique_path("dlq-list")
    created = [fail_now(client, rx, path) for _ in range(3)]
    dlq_ids = {dlq_id for _, dlq_id in created}
    url = rx.url + path

    listed = client.dlq.list(filter={"url": url})
    assert {m.dlq_id for m in listed.messages} == dlq_ids
    assert listed.cursor is None

    seen = []
    cursor = None
    pages = 0
    while True:
        page = client.dlq.list(filter={"url": url}, count=2, cursor=cursor)
        pages += 1
        assert pages <= 10
        assert len(page.messages) <= 2
        seen.extend(m.dlq_id for m in page.messages)
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == 2
    assert sorted(seen) == sorted(dlq_ids)

    status_filtered = client.dlq.list(filter={"url": url, "response_status": 500}).messages
    assert {m.dlq_id for m in status_filtered} == dlq_ids
    assert client.dlq.list(filter={"url": url, "response_status": 404}).messages == []


def test_get_and_delete(client, rx):
    path = unique_path("dlq-del")
    _, keep = fail_now(client, rx, path)
    message_id, gone = fail_now(client, rx, path)
    entry = client.dlq.get(gone)
    assert entry.message_id == message_id
    assert entry.response_body == f"boom {path}"

    assert client.dlq.delete(gone) is None
    assert [m.dlq_id for m in client.dlq.list(filter={"url": rx.url + path}).messages] == [keep]
    with pytest.raises(QStashError) as info:
        client.dlq.get(gone)
    assert is_status(info.value, 404), str(info.value)
    with pytest.raises(QStashError) as info:
        client.dlq.delete(gone)
    assert is_status(info.value, 404), str(info.value)


def test_delete_many(client, rx):
    path = unique_path("dlq-bulk-del")
    (_, a), (_, b), (_, c) = [fail_now(client, rx, path) for _ in range(3)]
    assert client.dlq.delete_many([a, b]) == 2
    assert [m.dlq_id for m in client.dlq.list(filter={"url": rx.url + path}).messages] == [c]
    assert client.dlq.delete_many([a, c]) == 1
    assert client.dlq.list(filter={"url": rx.url + path}).messages == []


def test_failed_attempt_logged_with_status(client, rx):
    path = unique_path("dlq-logs")
    message_id, _ = fail_now(client, rx, path)
    assert message_states(client, message_id) == ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    (error_entry,) = client.log.list(filter={"message_id": message_id, "state": LogState.ERROR}).logs
    assert error_entry.response_status == 500
