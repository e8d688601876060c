"""message.get / cancel / cancel_many / cancel_all through the official SDK."""

import pytest

from qstash.errors import QStashError

from support import Reply, is_status, make_rx, message_states, unique_path, wait_for_state, wait_until


def test_get_unknown_message_is_404(client):
    with pytest.raises(QStashError) as info:
        client.message.get("msg_doesnotexist")
    assert is_status(info.value, 404), str(info.value)


def test_cancel_a_delayed_message(server, client, rx):
    path = unique_path("cancel-one")
    res = client.message.publish(url=rx.url + path, body="x", delay=600)
    msg = client.message.get(res.message_id)
    assert msg.message_id == res.message_id
    assert msg.not_before >= msg.created_at + 600_000 - 1000

    assert client.message.cancel(res.message_id) is None
    # A second cancel finds nothing to cancel.
    with pytest.raises(QStashError) as info:
        client.message.cancel(res.message_id)
    assert is_status(info.value, 404), str(info.value)

    server.advance("700s")
    rx.assert_quiet(path, 0, 0.4)
    assert wait_for_state(client, res.message_id, "CANCELED") == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    with pytest.raises(QStashError) as info:
        client.message.get(res.message_id)
    assert is_status(info.value, 404), str(info.value)


def test_cancel_many_cancels_exactly_those(server, client, rx):
    path = unique_path("bulk")
    ids = [
        client.message.publish(url=f"{rx.url}{path}?i={i}", body=f"m{i}", delay=600).message_id
        for i in range(3)
    ]
    assert client.message.cancel_many(ids[:2]) == 2
    assert client.message.get(ids[2]).message_id == ids[2]

    server.advance("700s")
    (got,) = rx.wait_for(path, 1)
    rx.assert_quiet(path, 1)
    assert got.body == "m2"
    assert got.headers["upstash-message-id"] == ids[2]
    for message_id in ids[:2]:
        assert message_states(client, message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]


def test_cancel_many_with_unknown_ids_counts_only_real_ones(client, rx):
    path = unique_path("bulk-unknown")
    real = client.message.publish(url=rx.url + path, body="r", delay=600).message_id
    assert client.message.cancel_many([real, "msg_unknown_1", "msg_unknown_2"]) == 1
    assert client.message.cancel_many([real]) == 0


def test_cancel_all_only_touches_the_callers_messages(server, client, rx):
    # As testUser2, so the default user's messages are not affected; one default-user message
    # proves it.
    other = server.client("testUser2")
    other_rx = make_rx("testUser2")
    try:
        path = unique_path("all")
        ids = [other.message.publish(url=other_rx.url + path, body=str(i), delay=900).message_id for i in range(4)]
        main_path = unique_path("all-untouched")
        kept = client.message.publish(url=rx.url + main_path, body="keep", delay=900).message_id

        assert other.message.cancel_all() == 4
        assert other.message.cancel_all() == 0
        assert client.message.get(kept).message_id == kept

        server.advance("1000s")
        rx.wait_for(main_path, 1)
        other_rx.assert_quiet(path, 0)
        for message_id in ids:
            assert message_states(other, message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
        other_rx.assert_all_verified()
    finally:
        other_rx.close()


def test_cancel_in_flight_then_failure_is_canceled_without_retry(server, client, rx):
    path = unique_path("inflight-fail")
    rx.script(path, Reply(status=500, body="boom", delay=1.5))
    res = client.message.publish(url=rx.url + path, body="slow", retries=3)
    rx.wait_for(path, 1)
    client.message.cancel(res.message_id)
    states = wait_for_state(client, res.message_id, "CANCELED")
    assert "RETRY" not in states and "FAILED" not in states, states
    server.advance("3h")
    rx.assert_quiet(path, 1, 0.4)
    assert client.dlq.list(filter={"message_id": res.message_id}).messages == []


def test_users_are_isolated(server, client, rx):
    path = unique_path("isolation")
    message_id = client.message.publish(url=rx.url + path, body="mine", delay=600).message_id
    other = server.client("testUser1")
    with pytest.raises(QStashError) as info:
        other.message.get(message_id)
    assert is_status(info.value, 404), str(info.value)
    with pytest.raises(QStashError) as info:
        other.message.cancel(message_id)
    assert is_status(info.value, 404), str(info.value)
    assert other.log.list(filter={"message_id": message_id}).logs == []
    assert other.message.cancel_many([message_id]) == 0
    assert client.message.get(message_id).message_id == message_id
    client.message.cancel(message_id)
    wait_until(lambda: "CANCELED" in message_states(client, message_id), what="CANCELED")
