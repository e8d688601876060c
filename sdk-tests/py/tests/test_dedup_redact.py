"""Deduplication (deduplication_id, content_based_deduplication, which the SDK sends as
`True`) and redaction (the `redact` option) through the official SDK."""

import json

from support import Reply, header_values, logs_where, message_logs, message_states, unb64, unique, unique_path, wait_for_state


def is_redacted(value):
    return isinstance(value, str) and value.startswith("REDACTED")


def test_deduplication_id_returns_the_same_message_once(client, rx):
    path = unique_path("dedup-id")
    dedup_id = unique("id")
    first = client.message.publish(url=rx.url + path, body="first", deduplication_id=dedup_id)
    assert first.deduplicated is False
    second = client.message.publish(url=rx.url + path, body="second", deduplication_id=dedup_id)
    assert second.message_id == first.message_id
    assert second.deduplicated is True
    elsewhere = client.message.publish_json(url=f"{rx.url}{path}-other", body={"x": 1}, deduplication_id=dedup_id)
    assert (elsewhere.message_id, elsewhere.deduplicated) == (first.message_id, True)

    (got,) = rx.wait_for(path, 1)
    assert got.body == "first"
    rx.assert_quiet(path, 1, 0.3)
    rx.assert_quiet(f"{path}-other", 0, 0)
    wait_for_state(client, first.message_id, "DELIVERED")
    assert message_states(client, first.message_id) == ["CREATED", "ACTIVE", "DELIVERED"]


def test_content_based_deduplication_true_is_honoured(server, client, rx):
    path = unique_path("dedup-content")
    body = unique("content")
    base = dict(url=rx.url + path, body=body, headers={"X-H": "1"}, content_based_deduplication=True, delay=60)
    a = client.message.publish(**base)
    b = client.message.publish(**base)
    assert b.message_id == a.message_id
    assert b.deduplicated is True
    others = [
        client.message.publish(**{**base, "body": body + "!"}),
        client.message.publish(**{**base, "headers": {"X-H": "2"}}),
        client.message.publish(**{**base, "url": f"{rx.url}{path}?q=1"}),
        client.message.publish(**{**base, "content_type": "text/plain"}),
    ]
    assert len({a.message_id, *(o.message_id for o in others)}) == 5
    assert all(o.deduplicated is False for o in others)
    # content_based_deduplication=False (sent as "False") never deduplicates.
    c = client.message.publish(**{**base, "content_based_deduplication": False})
    d = client.message.publish(**{**base, "content_based_deduplication": False})
    assert c.message_id != d.message_id
    server.advance("61s")
    rx.wait_for(path, 7)
    rx.assert_quiet(path, 7, 0.3)


def test_publish_json_content_based_dedup(client, rx):
    path = unique_path("dedup-json")
    payload = {"order": unique("o"), "items": [1, 2]}
    a = client.message.publish_json(url=rx.url + path, body=payload, content_based_deduplication=True)
    b = client.message.publish_json(url=rx.url + path, body=payload, content_based_deduplication=True)
    assert (b.message_id, b.deduplicated) == (a.message_id, True)
    rx.wait_for(path, 1)
    rx.assert_quiet(path, 1, 0.3)


def test_enqueue_deduplicates(client, rx):
    path = unique_path("dedup-queue")
    queue = unique("dq")
    dedup_id = unique("qid")
    a = client.message.enqueue(queue=queue, url=rx.url + path, body="q", deduplication_id=dedup_id)
    b = client.message.enqueue_json(queue=queue, url=rx.url + path, body={"q": 1}, deduplication_id=dedup_id)
    assert (b.message_id, b.deduplicated) == (a.message_id, True)
    (got,) = rx.wait_for(path, 1)
    assert got.body == "q"
    rx.assert_quiet(path, 1, 0.3)


def test_deduplication_window_is_ten_minutes(server, client, rx):
    path = unique_path("dedup-window")
    dedup_id = unique("win")
    a = client.message.publish(url=rx.url + path, body="1", deduplication_id=dedup_id)
    rx.wait_for(path, 1)
    server.advance("9m")
    b = client.message.publish(url=rx.url + path, body="2", deduplication_id=dedup_id)
    assert (b.message_id, b.deduplicated) == (a.message_id, True)
    server.advance("61s")
    c = client.message.publish(url=rx.url + path, body="3", deduplication_id=dedup_id)
    assert c.message_id != a.message_id and c.deduplicated is False
    assert [d.body for d in rx.wait_for(path, 2)] == ["1", "3"]


def test_redact_body_and_one_header(server, client, rx):
    path = unique_path("redact")
    secret = unique("secret-body")
    res = client.message.publish(
        url=rx.url + path,
        body=secret,
        headers={"Authorization": "Bearer s3cr3t-token", "X-Visible": "visible-value"},
        redact={"body": True, "header": ["Authorization"]},
        delay=60,
    )
    message = client.message.get(res.message_id)
    assert is_redacted(message.body) and secret not in message.body
    (auth,) = header_values(message.headers, "Authorization")
    assert is_redacted(auth) and "s3cr3t" not in auth
    assert header_values(message.headers, "X-Visible") == ["visible-value"]

    server.advance("61s")
    (got,) = rx.wait_for(path, 1)
    assert got.body == secret
    assert got.headers["authorization"] == "Bearer s3cr3t-token"
    assert got.headers["x-visible"] == "visible-value"

    wait_for_state(client, res.message_id, "DELIVERED")
    entries = message_logs(client, res.message_id)
    assert len(entries) == 3
    for entry in entries:
        shown = unb64(entry.body_base64) if entry.body_base64 else ""
        assert is_redacted(shown), f"{entry.state} log body shown as {shown!r}"
        assert secret not in shown and secret not in (entry.body_base64 or "")
        (log_auth,) = header_values(entry.headers, "Authorization")
        assert is_redacted(log_auth)
        assert header_values(entry.headers, "X-Visible") == ["visible-value"]
        assert "s3cr3t" not in repr(entry)


def test_redact_all_headers(server, client, rx):
    path = unique_path("redact-headers")
    res = client.message.publish(
        url=rx.url + path,
        body="plain body",
        headers={"X-One": "one-secret", "X-Two": "two-secret"},
        redact={"header": True},
        delay=30,
    )
    message = client.message.get(res.message_id)
    assert message.body == "plain body"
    for name in ("X-One", "X-Two"):
        (value,) = header_values(message.headers, name)
        assert is_redacted(value)
    assert "-secret" not in repr(message)
    server.advance("31s")
    (got,) = rx.wait_for(path, 1)
    assert (got.headers["x-one"], got.headers["x-two"]) == ("one-secret", "two-secret")


def test_redacted_in_dlq_list_and_get(client, rx):
    path = unique_path("redact-dlq")
    secret = unique("dlq-secret")
    rx.script(path, Reply(status=500))
    res = client.message.publish(
        url=rx.url + path,
        body=secret,
        headers={"X-Token": "tok-secret"},
        retries=0,
        redact={"body": True, "header": ["X-Token"]},
    )
    wait_for_state(client, res.message_id, "FAILED")
    (entry,) = client.dlq.list(filter={"message_id": res.message_id}).messages
    assert is_redacted(entry.body)
    (token,) = header_values(entry.headers, "X-Token")
    assert is_redacted(token)
    assert secret not in repr(entry) and "tok-secret" not in repr(entry)
    fetched = client.dlq.get(entry.dlq_id)
    assert is_redacted(fetched.body)
    (delivered,) = rx.on(path)
    assert (delivered.body, delivered.headers["x-token"]) == (secret, "tok-secret")


def test_redaction_of_group_batch_and_queue_messages(server, client, rx):
    name = unique("rgrp")
    g1, g2 = unique_path("rg1"), unique_path("rg2")
    client.url_group.upsert_endpoints(name, [{"url": rx.url + g1}, {"url": rx.url + g2}])
    secret = unique("many-secret")
    group = client.message.publish(url_group=name, body=secret, redact={"body": True}, delay=30)
    (batched,) = client.message.batch([{"url": rx.url + unique_path("rb"), "body": secret, "redact": {"body": True}, "delay": 30}])
    queued = client.message.enqueue(queue=unique("rq"), url=rx.url + unique_path("rq"), body=secret, redact={"body": True})
    for message_id in [*(r.message_id for r in group), batched.message_id]:
        m = client.message.get(message_id)
        assert is_redacted(m.body), m
        assert secret not in repr(m)
    wait_for_state(client, queued.message_id, "DELIVERED")
    for entry in logs_where(client, {"message_id": queued.message_id}):
        assert is_redacted(unb64(entry.body_base64 or "")), entry
    res = client.message.publish(
        url=rx.url + unique_path("rci"), body="b", headers={"X-Token": "tok-ci"}, redact={"header": ["x-token"]}, delay=30
    )
    (token,) = header_values(client.message.get(res.message_id).headers, "X-Token")
    assert is_redacted(token)
    server.advance("31s")
    (d,) = rx.wait_for(g1, 1)
    assert d.body == secret


def test_publish_json_redacted_body(server, client, rx):
    path = unique_path("redact-json")
    res = client.message.publish_json(
        url=rx.url + path, body={"card": "4111-1111-1111-1111"}, redact={"body": True}, delay=30
    )
    message = client.message.get(res.message_id)
    assert is_redacted(message.body)
    assert "4111" not in repr(message)
    assert header_values(message.headers, "Content-Type") == ["application/json"]
    server.advance("31s")
    (got,) = rx.wait_for(path, 1)
    assert json.loads(got.body) == {"card": "4111-1111-1111-1111"}
