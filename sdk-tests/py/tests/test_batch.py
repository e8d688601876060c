"""message.batch / message.batch_json through the official SDK: URL items, a URL-group item
(nested list in the result), a queue item, per-item delay/headers/retries/labels, order kept."""

import json

import pytest

from qstash.errors import QStashError
from qstash.message import BatchResponse, BatchUrlGroupResponse

from support import is_status, logs_where, unique, unique_path, wait_for_state


def make_group(client, rx, rx2, tag):
    name = unique(f"bgrp-{tag}")
    g1, g2 = unique_path(f"{tag}-g1"), unique_path(f"{tag}-g2")
    client.url_group.upsert_endpoints(name, [{"name": "ep1", "url": rx.url + g1}, {"name": "ep2", "url": rx2.url + g2}])
    return name, g1, g2


def test_batch_with_url_group_queue_and_delayed_items(server, client, rx, rx2):
    name, g1, g2 = make_group(client, rx, rx2, "mixed")
    queue = unique("bq")
    p1, p3, p4 = unique_path("b-url"), unique_path("b-queue"), unique_path("b-delay")
    res = client.message.batch(
        [
            {"url": rx.url + p1, "body": "one", "content_type": "text/plain", "headers": {"X-One": "1"}},
            {"url_group": name, "body": "two", "headers": {"X-Two": "2"}},
            {"url": rx.url + p3, "body": "three", "queue": queue},
            {"url": rx.url + p4, "body": "four", "delay": 120, "retries": 2, "label": "batch-label", "method": "PUT"},
        ]
    )
    assert len(res) == 4
    assert isinstance(res[0], BatchResponse)
    assert isinstance(res[1], list) and all(isinstance(r, BatchUrlGroupResponse) for r in res[1])
    assert [r.url for r in res[1]] == [rx.url + g1, rx2.url + g2]
    assert isinstance(res[2], BatchResponse) and isinstance(res[3], BatchResponse)
    ids = [res[0].message_id, *(r.message_id for r in res[1]), res[2].message_id, res[3].message_id]
    assert all(i.startswith("msg_") for i in ids)
    assert len(set(ids)) == 5

    (d1,) = rx.wait_for(p1, 1)
    assert (d1.body, d1.headers["x-one"], d1.headers["content-type"]) == ("one", "1", "text/plain")
    assert d1.headers["upstash-message-id"] == res[0].message_id
    (dg1,) = rx.wait_for(g1, 1)
    (dg2,) = rx2.wait_for(g2, 1)
    for d, r in ((dg1, res[1][0]), (dg2, res[1][1])):
        assert d.body == "two"
        assert d.headers["x-two"] == "2"
        assert d.headers["upstash-topic-name"] == name
        assert d.headers["upstash-message-id"] == r.message_id

    (d3,) = rx.wait_for(p3, 1)
    assert d3.body == "three" and d3.headers["upstash-message-id"] == res[2].message_id
    queued = logs_where(client, {"queue": queue})
    assert queued and all(e.message_id == res[2].message_id and e.queue == queue for e in queued)
    assert client.queue.get(queue).name == queue

    delayed = client.message.get(res[3].message_id)
    assert delayed.max_retries == 2
    assert delayed.method == "PUT"
    assert delayed.label == "batch-label"
    assert delayed.not_before >= delayed.created_at + 119_000
    rx.assert_quiet(p4, 0, 0.3)
    server.advance("121s")
    (d4,) = rx.wait_for(p4, 1)
    assert (d4.method, d4.body) == ("PUT", "four")
    assert d4.headers["upstash-message-id"] == res[3].message_id
    wait_for_state(client, res[3].message_id, "DELIVERED")


def test_batch_json_serializes_bodies(client, rx, rx2):
    name, g1, g2 = make_group(client, rx, rx2, "json")
    queue = unique("bqj")
    p1, p3 = unique_path("bj-url"), unique_path("bj-queue")
    res = client.message.batch_json(
        [
            {"url": rx.url + p1, "body": {"item": 1, "text": "çé"}},
            {"url_group": name, "body": {"item": 2}},
            {"url": rx.url + p3, "body": [3, "three"], "queue": queue, "headers": {"X-Three": "3"}},
        ]
    )
    assert len(res) == 3
    assert isinstance(res[1], list) and not isinstance(res[0], list) and not isinstance(res[2], list)
    for receiver, path, body, message_id in (
        (rx, p1, {"item": 1, "text": "çé"}, res[0].message_id),
        (rx, g1, {"item": 2}, res[1][0].message_id),
        (rx2, g2, {"item": 2}, res[1][1].message_id),
        (rx, p3, [3, "three"], res[2].message_id),
    ):
        (d,) = receiver.wait_for(path, 1)
        assert d.headers["content-type"] == "application/json", path
        assert json.loads(d.body) == body
        assert d.headers["upstash-message-id"] == message_id
    assert rx.on(p3)[0].headers["x-three"] == "3"
    queued = logs_where(client, {"queue": queue})
    assert queued and all(e.message_id == res[2].message_id for e in queued)


def test_batch_url_keeps_its_query(client, rx):
    path = unique_path("b-query")
    res = client.message.batch([{"url": f"{rx.url}{path}?x=1&y=%2F", "body": "q"}])
    (d,) = rx.wait_for(path, 1)
    assert d.target == f"{path}?x=1&y=%2F"
    assert d.headers["upstash-message-id"] == res[0].message_id
    assert d.verify_error is None


def test_single_item_batch_is_a_list(client, rx):
    path = unique_path("b-single")
    res = client.message.batch([{"url": rx.url + path, "body": "alone"}])
    assert isinstance(res, list) and len(res) == 1
    (d,) = rx.wait_for(path, 1)
    assert d.headers["upstash-message-id"] == res[0].message_id


def test_batch_deduplicates_per_item(client, rx):
    path = unique_path("b-dedup")
    dedup_id = unique("bd")
    res = client.message.batch(
        [
            {"url": rx.url + path, "body": "first", "deduplication_id": dedup_id},
            {"url": rx.url + path, "body": "second", "deduplication_id": dedup_id},
            {"url": rx.url + path, "body": "third", "content_based_deduplication": True},
            {"url": rx.url + path, "body": "third", "content_based_deduplication": True},
        ]
    )
    assert res[1].message_id == res[0].message_id and res[1].deduplicated is True
    assert res[0].deduplicated is False
    assert res[3].message_id == res[2].message_id and res[3].deduplicated is True
    assert res[2].message_id != res[0].message_id
    got = rx.wait_for(path, 2)
    rx.assert_quiet(path, 2, 0.3)
    assert sorted(d.body for d in got) == ["first", "third"]


def test_batch_items_keep_callbacks_and_flow_control(server, client, rx):
    p1, cb, p2 = unique_path("b-cbsrc"), unique_path("b-cb"), unique_path("b-fc")
    key = unique("bfc")
    res = client.message.batch(
        [
            {"url": rx.url + p1, "body": "with callback", "callback": rx.url + cb},
            {
                "url": rx.url + p2,
                "body": "flow",
                "flow_control": {"key": key, "parallelism": 1, "rate": 5, "period": 60},
                "delay": 30,
            },
        ]
    )
    message = client.message.get(res[1].message_id)
    assert message.flow_control is not None
    assert (message.flow_control.key, message.flow_control.parallelism, message.flow_control.rate, message.flow_control.period) == (key, 1, 5, 60)
    (c,) = rx.wait_for(cb, 1)
    assert json.loads(c.body)["sourceMessageId"] == res[0].message_id
    server.advance("31s")
    rx.wait_for(p2, 1)


@pytest.mark.parametrize("bad", ["unknown-group", "invalid-delay"])
def test_batch_with_an_invalid_item_reports_it_and_sends_the_others(server, client, rx, bad):
    """The rule of our issue tracker (it wins over endpoints.md's advice): one bad item gets its own
    ``{"error": ...}`` element while the others are accepted. qstash-py's parse_batch_response
    indexes ``messageId`` on every element, so ``message.batch`` raises KeyError on such an answer;
    the raw API shows what happened."""
    good = unique_path("b-good")
    if bad == "unknown-group":
        bad_item = {"destination": unique("no-such-group"), "headers": {}, "body": "x", "queue": None}
    else:
        bad_item = {"destination": rx.url + unique_path("bad"), "headers": {"Upstash-Delay": "soon"}, "body": "x", "queue": None}
    good_item = {"destination": rx.url + good, "headers": {}, "body": "good", "queue": None}
    resp = server.raw("POST", "/v2/batch", json=[bad_item, good_item])
    assert resp.status_code == 200, resp.text
    first, second = resp.json()
    assert "messageId" not in first and ("not found" in first["error"] or "Upstash-Delay" in first["error"]), first
    assert second["messageId"].startswith("msg_")
    (delivery,) = rx.wait_for(good, 1)
    assert delivery.body == "good"

    sdk_good = unique_path("b-sdk-good")
    item = {"url_group": unique("no-such-group")} if bad == "unknown-group" else {"url": rx.url + unique_path("bad"), "delay": "soon"}
    with pytest.raises(KeyError):
        client.message.batch([{**item, "body": "x"}, {"url": rx.url + sdk_good, "body": "good"}])
    rx.wait_for(sdk_good, 1)
