"""Queues through the official SDK: client.queue.upsert/get/list/delete/pause/resume and
message.enqueue/enqueue_json; FIFO order and parallelism observed at a local receiver that
answers slowly and verifies every delivery with qstash.Receiver."""

import json

import pytest

from qstash.errors import QStashError

from support import Reply, is_status, logs_where, unique, unique_path, wait_for_state, wait_until


def slow(rx, path, n, seconds):
    rx.script(path, *(Reply(delay=seconds) for _ in range(n)))


def wait_for_lag(client, queue, lag):
    wait_until(lambda: client.queue.get(queue).lag == lag, what=f"lag {lag} on {queue}")


def test_upsert_get_and_update(server, client):
    name = unique("q-crud")
    t0 = server.clock()["now"]
    client.queue.upsert(name, parallelism=1)
    created = client.queue.get(name)
    assert (created.name, created.parallelism, created.lag, created.paused) == (name, 1, 0, False)
    assert created.created_at >= t0 - 1000
    assert isinstance(created.updated_at, int)

    server.advance("2s")
    client.queue.upsert(name, parallelism=3, paused=True)
    updated = client.queue.get(name)
    assert (updated.parallelism, updated.paused) == (3, True)
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at

    client.queue.upsert(name, parallelism=2)  # paused defaults to False in the SDK
    again = client.queue.get(name)
    assert (again.parallelism, again.paused) == (2, False)


def test_list_and_delete(client):
    a, b = unique("q-list-a"), unique("q-list-b")
    client.queue.upsert(a)
    client.queue.upsert(b, parallelism=2, paused=True)
    queues = {q.name: q for q in client.queue.list()}
    assert a in queues and b in queues
    assert (queues[b].parallelism, queues[b].paused) == (2, True)
    assert (queues[a].parallelism, queues[a].paused, queues[a].lag) == (1, False, 0)

    client.queue.delete(a)
    with pytest.raises(QStashError) as info:
        client.queue.get(a)
    assert is_status(info.value, 404), str(info.value)
    assert a not in [q.name for q in client.queue.list()]


def test_errors(client):
    with pytest.raises(QStashError) as info:
        client.queue.get(unique("q-nope"))
    assert is_status(info.value, 404), str(info.value)
    with pytest.raises(QStashError) as info:
        client.queue.upsert("bad!queue")
    assert is_status(info.value, 400), str(info.value)
    with pytest.raises(QStashError) as info:
        client.queue.upsert(unique("q-zero"), parallelism=0)
    assert is_status(info.value, 400), str(info.value)
    # Above the plan's maximum queue parallelism (100 for the default payg quota): 412.
    with pytest.raises(QStashError) as info:
        client.queue.upsert(unique("q-huge"), parallelism=101)
    assert is_status(info.value, 412), str(info.value)
    with pytest.raises(QStashError) as info:
        client.message.enqueue(queue="bad!queue", url="http://127.0.0.1:9/never", body="x")
    assert is_status(info.value, 400), str(info.value)


def test_enqueue_creates_the_queue(client, rx):
    name = unique("q-implicit")
    path = unique_path("implicit")
    res = client.message.enqueue(queue=name, url=rx.url + path, body="x")
    assert res.message_id.startswith("msg_") and res.deduplicated is False
    rx.wait_for(path, 1)
    queue = client.queue.get(name)
    assert (queue.parallelism, queue.paused) == (1, False)


def test_fifo_one_at_a_time_and_lag(client, rx):
    name = unique("q-fifo")
    client.queue.upsert(name, parallelism=1)
    path = unique_path("fifo")
    slow(rx, path, 5, 0.15)
    ids = [client.message.enqueue_json(queue=name, url=rx.url + path, body={"i": i}).message_id for i in range(5)]
    lag = client.queue.get(name).lag
    assert 4 <= lag <= 5, lag
    assert client.message.get(ids[4]).queue == name

    got = rx.wait_for(path, 5)
    assert [json.loads(d.body)["i"] for d in got] == [0, 1, 2, 3, 4]
    assert [d.headers["upstash-message-id"] for d in got] == ids
    for i in range(1, 5):
        gap = got[i].at - got[i - 1].at
        assert gap >= 0.14, f"delivery {i} started {gap:.3f} s after {i - 1}, before it was answered"
    wait_for_lag(client, name, 0)
    entries = logs_where(client, {"queue": name})
    assert {e.message_id for e in entries} == set(ids)
    assert all(e.queue == name for e in entries)


def test_head_waiting_for_retry_blocks_the_queue(server, client, rx):
    name = unique("q-retry-head")
    client.queue.upsert(name, parallelism=1)
    path = unique_path("retry-head")
    rx.script(path, Reply(status=500))
    a = client.message.enqueue(queue=name, url=f"{rx.url}{path}?m=a", body="a", retries=1)
    b = client.message.enqueue(queue=name, url=f"{rx.url}{path}?m=b", body="b")
    rx.wait_for(path, 1)
    wait_for_state(client, a.message_id, "RETRY")
    rx.assert_quiet(path, 1, 0.4)
    assert client.queue.get(name).lag == 2
    server.advance("13s")
    got = rx.wait_for(path, 3)
    assert [d.body for d in got] == ["a", "a", "b"]
    wait_for_state(client, b.message_id, "DELIVERED")


def test_next_message_waits_for_the_callback(client, rx):
    name = unique("q-cb-wait")
    client.queue.upsert(name, parallelism=1)
    path, cb = unique_path("cbq"), unique_path("cbq-cb")
    rx.script(cb, Reply(delay=0.5))
    client.message.enqueue(queue=name, url=f"{rx.url}{path}?m=a", body="a", callback=rx.url + cb)
    client.message.enqueue(queue=name, url=f"{rx.url}{path}?m=b", body="b")
    (c,) = rx.wait_for(cb, 1)
    got = rx.wait_for(path, 2)
    assert [d.body for d in got] == ["a", "b"]
    assert got[1].at >= c.at + 0.45, f"b started {got[1].at - c.at:.3f} s after the callback began"


def test_parallelism_two(client, rx):
    name = unique("q-par2")
    client.queue.upsert(name, parallelism=2)
    path = unique_path("par2")
    # Staggered answers, so that the slots free up at distinct times: 0 answers after 0.3 s
    # (then 2 starts), 1 after 0.9 s, 2 after 0.3 s (then 3 starts, at ~0.6 s).
    rx.script(path, Reply(delay=0.3), Reply(delay=0.9), Reply(delay=0.3), Reply(delay=0.1))
    for i in range(4):
        client.message.enqueue(queue=name, url=rx.url + path, body=str(i))
    got = rx.wait_for(path, 4)
    # 0 and 1 start together, on two connections: either may arrive first (the replies go
    # by arrival).
    assert sorted(d.body for d in got[:2]) == ["0", "1"]
    assert [d.body for d in got[2:]] == ["2", "3"]
    since = [d.at - got[0].at for d in got]
    assert since[1] < 0.25, since
    assert since[2] >= 0.28, since
    assert 0.58 <= since[3] < 0.88, since


def test_pause_holds_and_resume_releases_in_order(client, rx):
    name = unique("q-pause")
    client.queue.upsert(name, parallelism=1)
    client.queue.pause(name)
    assert client.queue.get(name).paused is True
    path = unique_path("paused")
    ids = [client.message.enqueue(queue=name, url=rx.url + path, body=b).message_id for b in ("p1", "p2", "p3")]
    rx.assert_quiet(path, 0, 0.5)
    assert client.queue.get(name).lag == 3
    for message_id in ids:
        assert [e.state.value for e in logs_where(client, {"message_id": message_id})] == ["CREATED"]
    client.queue.pause(name)  # idempotent

    client.queue.resume(name)
    assert client.queue.get(name).paused is False
    got = rx.wait_for(path, 3)
    assert [d.body for d in got] == ["p1", "p2", "p3"]
    wait_for_lag(client, name, 0)


def test_pause_during_a_delivery(client, rx):
    name = unique("q-pause-inflight")
    client.queue.upsert(name, parallelism=1)
    path = unique_path("pause-inflight")
    rx.script(path, Reply(delay=0.5))
    a = client.message.enqueue(queue=name, url=rx.url + path, body="a")
    client.message.enqueue(queue=name, url=rx.url + path, body="b")
    rx.wait_for(path, 1)
    client.queue.pause(name)
    wait_for_state(client, a.message_id, "DELIVERED")
    rx.assert_quiet(path, 1, 0.4)
    assert client.queue.get(name).lag == 1
    client.queue.resume(name)
    assert rx.wait_for(path, 2)[1].body == "b"


def test_upsert_paused_true_then_false(client, rx):
    name = unique("q-upsert-pause")
    client.queue.upsert(name, paused=True)
    path = unique_path("upsert-paused")
    client.message.enqueue_json(queue=name, url=rx.url + path, body={"held": True})
    rx.assert_quiet(path, 0, 0.4)
    client.queue.upsert(name, paused=False)
    (got,) = rx.wait_for(path, 1)
    assert json.loads(got.body) == {"held": True}


def test_enqueue_options_reach_the_message(client, rx):
    name = unique("q-opts")
    client.queue.upsert(name, paused=True)
    path = unique_path("q-opts")
    res = client.message.enqueue(
        queue=name,
        url=rx.url + path,
        body="opts",
        method="PATCH",
        headers={"X-Queued": "yes"},
        retries=4,
        label="queued-label",
        timeout=20,
    )
    message = client.message.get(res.message_id)
    assert message.queue == name
    assert message.method == "PATCH"
    assert message.max_retries == 4
    assert message.label == "queued-label"
    assert message.headers.get("X-Queued") == ["yes"]
    client.queue.resume(name)
    (got,) = rx.wait_for(path, 1)
    assert (got.method, got.headers["x-queued"]) == ("PATCH", "yes")
