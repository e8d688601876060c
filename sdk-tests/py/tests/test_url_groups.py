"""URL groups through the official SDK: client.url_group.upsert_endpoints/get/list/
remove_endpoints/delete, and message.publish/publish_json/enqueue to a group fanning out to two
local receivers that verify every delivery with qstash.Receiver."""

import json

import pytest

from qstash.errors import QStashError
from qstash.message import PublishUrlGroupResponse

from support import Reply, is_status, logs_where, unique, unique_path, wait_for_state


def two_endpoint_group(client, rx, rx2, tag):
    name = unique(f"grp-{tag}")
    p1, p2 = unique_path(f"{tag}-a"), unique_path(f"{tag}-b")
    client.url_group.upsert_endpoints(name, [{"name": "first", "url": rx.url + p1}, {"url": rx2.url + p2}])
    return {"name": name, "p1": p1, "p2": p2, "u1": rx.url + p1, "u2": rx2.url + p2}


def endpoints_of(group):
    return [(e.name, e.url) for e in group.endpoints]


def test_upsert_endpoints_creates_the_group_and_get_returns_it(server, client, rx, rx2):
    t0 = server.clock()["now"]
    g = two_endpoint_group(client, rx, rx2, "create")
    group = client.url_group.get(g["name"])
    assert group.name == g["name"]
    assert isinstance(group.created_at, int) and isinstance(group.updated_at, int)
    assert group.created_at >= t0 - 1000
    assert group.updated_at >= group.created_at
    assert endpoints_of(group) == [("first", g["u1"]), (None, g["u2"])]


def test_upsert_endpoints_adds_and_updates_existing_urls(server, client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "upsert")
    before = client.url_group.get(g["name"])
    p3 = unique_path("upsert-c")
    server.advance("5s")
    client.url_group.upsert_endpoints(
        g["name"], [{"name": "renamed", "url": g["u1"]}, {"name": "third", "url": rx.url + p3}]
    )
    group = client.url_group.get(g["name"])
    assert sorted(endpoints_of(group), key=lambda e: e[1]) == sorted(
        [("renamed", g["u1"]), (None, g["u2"]), ("third", rx.url + p3)], key=lambda e: e[1]
    )
    assert group.created_at == before.created_at
    assert group.updated_at > before.updated_at


def test_list_contains_the_groups(client, rx, rx2):
    g1 = two_endpoint_group(client, rx, rx2, "list1")
    g2 = two_endpoint_group(client, rx, rx2, "list2")
    groups = {g.name: g for g in client.url_group.list()}
    for g in (g1, g2):
        assert g["name"] in groups
        assert endpoints_of(groups[g["name"]]) == [("first", g["u1"]), (None, g["u2"])]


def test_remove_endpoints_by_url_and_name_then_the_group_is_gone(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "remove")
    client.url_group.remove_endpoints(g["name"], [{"url": g["u2"]}])
    assert endpoints_of(client.url_group.get(g["name"])) == [("first", g["u1"])]
    client.url_group.remove_endpoints(g["name"], [{"name": "first"}])
    # The SDK documents: "If all endpoints have been removed, the url group will be deleted."
    with pytest.raises(QStashError) as info:
        client.url_group.get(g["name"])
    assert is_status(info.value, 404), str(info.value)
    assert g["name"] not in [x.name for x in client.url_group.list()]


def test_delete_then_get_and_remove_are_404_and_delete_again_is_fine(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "delete")
    client.url_group.delete(g["name"])
    with pytest.raises(QStashError) as info:
        client.url_group.get(g["name"])
    assert is_status(info.value, 404), str(info.value)
    with pytest.raises(QStashError) as info:
        client.url_group.remove_endpoints(g["name"], [{"url": g["u1"]}])
    assert is_status(info.value, 404), str(info.value)
    # The SDK's own test suite deletes groups that may not exist without catching errors.
    client.url_group.delete(g["name"])
    client.url_group.delete(unique("never-existed"))


def test_invalid_names_and_urls_are_400(client, rx):
    for name, url in (("bad!name", rx.url + "/x"), (unique("ftp"), "ftp://example.com/x"), (unique("nourl"), "not a url")):
        with pytest.raises(QStashError) as info:
            client.url_group.upsert_endpoints(name, [{"url": url}])
        assert is_status(info.value, 400), str(info.value)


def test_publish_fans_out_with_topic_name_header(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "fanout")
    res = client.message.publish(
        url_group=g["name"], body="to everyone", content_type="text/plain", headers={"X-Fan": "out"}
    )
    assert isinstance(res, list) and len(res) == 2
    assert all(isinstance(r, PublishUrlGroupResponse) for r in res)
    assert [r.url for r in res] == [g["u1"], g["u2"]]
    assert all(r.message_id.startswith("msg_") and r.deduplicated is False for r in res)
    assert res[0].message_id != res[1].message_id

    (d1,) = rx.wait_for(g["p1"], 1)
    (d2,) = rx2.wait_for(g["p2"], 1)
    rx.assert_quiet(g["p1"], 1, 0.2)
    rx2.assert_quiet(g["p2"], 1, 0)
    for d, r in ((d1, res[0]), (d2, res[1])):
        assert d.verify_error is None
        assert d.body == "to everyone"
        assert d.headers["upstash-topic-name"] == g["name"]
        assert d.headers["upstash-message-id"] == r.message_id
        assert d.headers["x-fan"] == "out"
        assert d.headers["content-type"] == "text/plain"


def test_message_get_and_logs_carry_url_group_and_endpoint(server, client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "meta")
    res = client.message.publish(url_group=g["name"], body="later", delay=300)
    m1, m2 = (client.message.get(r.message_id) for r in res)
    assert (m1.url, m1.url_group, m1.endpoint) == (g["u1"], g["name"], "first")
    assert (m2.url, m2.url_group, m2.endpoint) == (g["u2"], g["name"], None)

    server.advance("310s")
    rx.wait_for(g["p1"], 1)
    rx2.wait_for(g["p2"], 1)
    for r in res:
        wait_for_state(client, r.message_id, "DELIVERED")
    entries = logs_where(client, {"url_group": g["name"]})
    assert {e.message_id for e in entries} == {r.message_id for r in res}
    assert len(entries) == 6, [e.state for e in entries]
    for e in entries:
        assert e.url_group == g["name"]
        if e.message_id == res[0].message_id:
            assert (e.url, e.endpoint) == (g["u1"], "first")
        else:
            assert (e.url, e.endpoint) == (g["u2"], None)


def test_publish_json_to_a_group(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "json")
    payload = {"hello": "group", "n": 2}
    res = client.message.publish_json(url_group=g["name"], body=payload)
    assert len(res) == 2
    for receiver, path in ((rx, g["p1"]), (rx2, g["p2"])):
        (d,) = receiver.wait_for(path, 1)
        assert d.headers["content-type"] == "application/json"
        assert json.loads(d.body) == payload
        assert d.headers["upstash-topic-name"] == g["name"]


def test_each_endpoint_retries_independently(server, client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "indep")
    rx.script(g["p1"], Reply(status=500))
    res = client.message.publish(url_group=g["name"], body="x", retries=1)
    wait_for_state(client, res[0].message_id, "RETRY")
    wait_for_state(client, res[1].message_id, "DELIVERED")
    server.advance("13s")
    attempts = rx.wait_for(g["p1"], 2)
    assert [a.headers["upstash-retried"] for a in attempts] == ["0", "1"]
    wait_for_state(client, res[0].message_id, "DELIVERED")
    rx2.assert_quiet(g["p2"], 1, 0.1)


def test_group_publish_dedup_returns_the_original_array(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "dedup")
    dedup_id = unique("grp-dedup")
    first = client.message.publish(url_group=g["name"], body="once", deduplication_id=dedup_id)
    second = client.message.publish(url_group=g["name"], body="once", deduplication_id=dedup_id)
    assert [(r.message_id, r.url) for r in second] == [(r.message_id, r.url) for r in first]
    assert all(r.deduplicated is True for r in second)
    rx.wait_for(g["p1"], 1)
    rx2.wait_for(g["p2"], 1)
    rx.assert_quiet(g["p1"], 1, 0.3)
    rx2.assert_quiet(g["p2"], 1, 0)


def test_enqueue_to_a_group(client, rx, rx2):
    g = two_endpoint_group(client, rx, rx2, "enqueue")
    queue = unique("q-grp")
    res = client.message.enqueue(queue=queue, url_group=g["name"], body="queued")
    assert isinstance(res, list)
    assert [r.url for r in res] == [g["u1"], g["u2"]]
    (d1,) = rx.wait_for(g["p1"], 1)
    (d2,) = rx2.wait_for(g["p2"], 1)
    assert d1.headers["upstash-topic-name"] == d2.headers["upstash-topic-name"] == g["name"]
    entries = logs_where(client, {"queue": queue})
    assert {e.message_id for e in entries} == {r.message_id for r in res}
    client.queue.delete(queue)


def test_endpoint_with_query_string(client, rx):
    name = unique("query.name_1")
    path = unique_path("eq")
    url = f"{rx.url}{path}?a=1&b=x%20y"
    client.url_group.upsert_endpoints(name, [{"url": url}])
    assert endpoints_of(client.url_group.get(name)) == [(None, url)]
    (res,) = client.message.publish(url_group=name, body="q")
    assert res.url == url
    (d,) = rx.wait_for(path, 1)
    assert d.target == f"{path}?a=1&b=x%20y"
    assert d.url == url and d.verify_error is None


def test_unknown_group_is_404(client):
    name = unique("unknown")
    for call in (
        lambda: client.message.publish(url_group=name, body="x"),
        lambda: client.message.publish_json(url_group=name, body={"a": 1}),
        lambda: client.message.enqueue(queue=unique("q"), url_group=name, body="x"),
    ):
        with pytest.raises(QStashError) as info:
            call()
        assert is_status(info.value, 404), str(info.value)
    assert logs_where(client, {"url_group": name}) == []
