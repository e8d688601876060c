"""Bulk cancel of many messages, time-bounded log filters and DLQ label filters through the
Python SDK."""

from support import Reply, unique_path, wait_for_state


def test_cancel_all_with_more_than_100_pending(server, rx):
    client = server.client("testUser1")
    try:
        ids = [
            client.message.publish(url=f"{rx.url}/never-{i}", body="x", delay=600).message_id
            for i in range(130)
        ]
        assert len(set(ids)) == 130
        first = client.message.cancel_all()
        second = client.message.cancel_all()
        assert (first, second) == (130, 0)
    finally:
        for _ in range(5):
            if client.message.cancel_all() == 0:
                break


def test_logs_from_time_and_to_time(server, client, rx):
    path = unique_path("dates")
    url = rx.url + path
    early = client.message.publish(url=url, body="early").message_id
    wait_for_state(client, early, "DELIVERED")
    server.advance("60s")
    boundary = server.clock()["now"]
    server.advance("60s")
    late = client.message.publish(url=url, body="late").message_id
    wait_for_state(client, late, "DELIVERED")

    after = client.log.list(filter={"url": url, "from_time": boundary}).logs
    assert {entry.message_id for entry in after} == {late}
    assert len(after) == 3
    before = client.log.list(filter={"url": url, "to_time": boundary}).logs
    assert {entry.message_id for entry in before} == {early}
    assert len(before) == 3


def test_dlq_list_by_label(client, rx):
    label = unique_path("dlq-label").strip("/")
    path = unique_path("dlq-label")
    ids = []
    for lbl in (label, None):
        rx.script(path, Reply(status=500))
        kwargs = {"label": lbl} if lbl else {}
        message_id = client.message.publish(url=rx.url + path, body="x", retries=0, **kwargs).message_id
        wait_for_state(client, message_id, "FAILED")
        ids.append(message_id)
    (entry,) = client.dlq.list(filter={"label": label}).messages
    assert entry.message_id == ids[0]
    assert entry.label == label
    assert len(client.dlq.list(filter={"url": rx.url + path}).messages) == 2


def test_dlq_entries_are_per_user(server, client, rx):
    other = server.client("testUser2")
    path = unique_path("dlq-iso")
    rx.script(path, Reply(status=500))
    message_id = client.message.publish(url=rx.url + path, body="x", retries=0).message_id
    wait_for_state(client, message_id, "FAILED")
    (entry,) = client.dlq.list(filter={"message_id": message_id}).messages
    # Another user can neither see nor delete this entry.
    assert other.dlq.delete_many([entry.dlq_id]) == 0
    assert other.dlq.list(filter={"message_id": message_id}).messages == []
    assert client.dlq.get(entry.dlq_id).dlq_id == entry.dlq_id
