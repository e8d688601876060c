"""Callbacks and failure callbacks through the official SDK (callback, failure_callback,
callback_headers, failure_callback_headers). The SDK prefixes callback_headers keys with
`Upstash-Callback-` (not `-Forward-`), so `Forward-X` keys are what forwards a header
(sdk-quirks.md §3). Every callback delivery is verified with qstash.Receiver."""

import json

from support import Reply, header_values, message_logs, message_states, unb64, unique, unique_path, wait_for_state


def assert_ms_string(value, lo, hi, what):
    assert isinstance(value, str), f"{what} must be a JSON string of ms, got {value!r}"
    assert value.isdigit(), what
    assert lo <= int(value) <= hi, f"{what} {value} outside [{lo}, {hi}]"


def test_callback_after_success_carries_response_and_source(server, client, rx):
    path, cb, fcb = unique_path("src"), unique_path("cb"), unique_path("fcb")
    rx.script(path, Reply(status=201, body="target says hi", headers={"X-Reply": "r1"}))
    t0 = server.clock()["now"]
    res = client.message.publish(
        url=rx.url + path,
        body="source body",
        content_type="text/plain",
        headers={"X-Src": "s"},
        retries=2,
        callback=rx.url + cb,
        failure_callback=rx.url + fcb,
    )
    t1 = server.clock()["now"]
    message = client.message.get(res.message_id)
    assert message.callback == rx.url + cb
    assert message.failure_callback == rx.url + fcb

    (c,) = rx.wait_for(cb, 1)
    assert c.verify_error is None
    assert c.method == "POST"
    callback_id = c.headers["upstash-message-id"]
    assert callback_id.startswith("msg_") and callback_id != res.message_id
    body = json.loads(c.body)
    assert body["status"] == 201
    assert header_values(body["header"], "X-Reply") == ["r1"]
    assert unb64(body["body"]) == "target says hi"
    assert body.get("retried", 0) == 0
    assert body["maxRetries"] == 2
    assert body["sourceMessageId"] == res.message_id
    assert body["url"] == rx.url + path
    assert body["method"] == "POST"
    assert header_values(body["sourceHeader"], "X-Src") == ["s"]
    assert header_values(body["sourceHeader"], "Content-Type") == ["text/plain"]
    assert unb64(body["sourceBody"]) == "source body"
    assert_ms_string(body["createdAt"], t0 - 1000, t1 + 1000, "createdAt")
    assert_ms_string(body["notBefore"], int(body["createdAt"]), t1 + 1000, "notBefore")
    assert isinstance(body["callerIP"], str) and body["callerIP"]
    assert "dlqId" not in body
    assert "topicName" not in body and "scheduleId" not in body

    # Once the server is idle nothing more can come: no sleeping to see that it stays quiet.
    server.wait_idle()
    assert message_states(client, callback_id)[-1] == "DELIVERED"
    assert message_states(client, res.message_id)[-1] == "DELIVERED"
    rx.assert_quiet(cb, 1, 0)
    rx.assert_quiet(fcb, 0, 0)


def test_callback_per_attempt_and_failure_callback_with_dlq_id(server, client, rx):
    path, cb, fcb = unique_path("fail"), unique_path("fail-cb"), unique_path("fail-fcb")
    rx.script(path, Reply(status=500, body="nope 1"), Reply(status=502, body="nope 2", headers={"X-Last": "yes"}))
    res = client.message.publish(
        url=rx.url + path,
        method="PUT",
        body="will fail",
        retries=1,
        callback=rx.url + cb,
        failure_callback=rx.url + fcb,
    )
    (first,) = rx.wait_for(cb, 1)
    wait_for_state(client, res.message_id, "RETRY")
    rx.assert_quiet(fcb, 0, 0)
    server.advance("13s")
    callbacks = rx.wait_for(cb, 2)
    (f,) = rx.wait_for(fcb, 1)
    wait_for_state(client, res.message_id, "FAILED")

    c1, c2 = json.loads(first.body), json.loads(callbacks[1].body)
    assert (c1["status"], unb64(c1["body"]), c1.get("retried", 0)) == (500, "nope 1", 0)
    assert (c2["status"], unb64(c2["body"]), c2["retried"]) == (502, "nope 2", 1)
    for c in (c1, c2):
        assert c["sourceMessageId"] == res.message_id
        assert c["maxRetries"] == 1
        assert c["method"] == "PUT"
        assert "dlqId" not in c

    assert f.verify_error is None
    fb = json.loads(f.body)
    dlq = client.dlq.list(filter={"message_id": res.message_id}).messages
    assert len(dlq) == 1
    assert fb["dlqId"] == dlq[0].dlq_id
    assert fb["status"] == 502
    assert header_values(fb["header"], "X-Last") == ["yes"]
    assert unb64(fb["body"]) == "nope 2"
    assert (fb["retried"], fb["maxRetries"]) == (1, 1)
    assert fb["sourceMessageId"] == res.message_id
    assert fb["url"] == rx.url + path
    assert fb["method"] == "PUT"
    assert unb64(fb["sourceBody"]) == "will fail"
    assert fb["createdAt"].isdigit() and fb["notBefore"].isdigit()
    assert isinstance(fb["callerIP"], str)
    rx.assert_quiet(fcb, 1, 0.3)
    rx.assert_quiet(cb, 2, 0)


def test_no_callbacks_after_cancel(server, client, rx):
    path, cb, fcb = unique_path("cancel"), unique_path("cancel-cb"), unique_path("cancel-fcb")
    rx.script(path, Reply(status=500), Reply(status=500), Reply(status=500))
    res = client.message.publish(
        url=rx.url + path, body="x", retries=2, callback=rx.url + cb, failure_callback=rx.url + fcb
    )
    rx.wait_for(cb, 1)
    wait_for_state(client, res.message_id, "RETRY")
    client.message.cancel(res.message_id)
    wait_for_state(client, res.message_id, "CANCELED")
    server.advance("200s")
    rx.assert_quiet(path, 1, 0.4)
    rx.assert_quiet(cb, 1, 0)
    rx.assert_quiet(fcb, 0, 0)
    assert client.dlq.list(filter={"message_id": res.message_id}).messages == []


def test_log_entries_carry_callback_headers(client, rx):
    path, cb, fcb = unique_path("cblog"), unique_path("cblog-cb"), unique_path("cblog-fcb")
    res = client.message.publish(
        url=rx.url + path,
        body="x",
        callback=rx.url + cb,
        failure_callback=rx.url + fcb,
        callback_headers={"Forward-X-Cb": "cbv"},
        failure_callback_headers={"Forward-X-Fcb": "fcbv"},
    )
    rx.wait_for(cb, 1)
    wait_for_state(client, res.message_id, "DELIVERED")
    for entry in message_logs(client, res.message_id):
        assert entry.callback == rx.url + cb
        assert entry.failure_callback == rx.url + fcb
        assert header_values(entry.callback_headers, "X-Cb") == ["cbv"], entry
        assert header_values(entry.failure_callback_headers, "X-Fcb") == ["fcbv"], entry


def test_callback_headers_and_failure_callback_headers(server, client, rx):
    path, cb, fcb = unique_path("cfg"), unique_path("cfg-cb"), unique_path("cfg-fcb")
    rx.script(path, Reply(status=500))
    res = client.message.publish(
        url=rx.url + path,
        body="configured",
        retries=0,
        delay=10,
        callback=rx.url + cb,
        failure_callback=rx.url + fcb,
        # Sent as Upstash-Callback-Forward-X-Cb / Upstash-Callback-Method, etc.
        callback_headers={"Forward-X-Cb": "cb-value", "Method": "PUT"},
        failure_callback_headers={"Forward-X-Fcb": "fcb-value", "Method": "PATCH"},
    )
    message = client.message.get(res.message_id)
    assert header_values(message.callback_headers, "X-Cb") == ["cb-value"]
    assert header_values(message.failure_callback_headers, "X-Fcb") == ["fcb-value"]
    assert header_values(message.headers, "X-Cb") is None

    server.advance("11s")
    (c,) = rx.wait_for(cb, 1)
    (f,) = rx.wait_for(fcb, 1)
    assert c.method == "PUT" and c.headers.get("x-cb") == "cb-value" and "x-fcb" not in c.headers
    assert f.method == "PATCH" and f.headers.get("x-fcb") == "fcb-value" and "x-cb" not in f.headers
    (d,) = rx.on(path)
    assert "x-cb" not in d.headers and "x-fcb" not in d.headers


def test_callback_retries_header_governs_a_failing_callback(client, rx):
    path, cb = unique_path("cbr"), unique_path("cbr-cb")
    rx.script(cb, Reply(status=500), Reply(status=500))
    client.message.publish(url=rx.url + path, body="x", retries=3, callback=rx.url + cb, callback_headers={"Retries": "0"})
    (c,) = rx.wait_for(cb, 1)
    states = wait_for_state(client, c.headers["upstash-message-id"], "FAILED")
    assert states == ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    rx.assert_quiet(cb, 1, 0.2)


def test_non_retryable_489_calls_the_failure_callback_at_once(client, rx):
    path, fcb = unique_path("489"), unique_path("489-fcb")
    rx.script(path, Reply(status=489, body="stop", headers={"Upstash-NonRetryable-Error": "true"}))
    res = client.message.publish(url=rx.url + path, body="x", retries=3, failure_callback=rx.url + fcb)
    (f,) = rx.wait_for(fcb, 1)
    fb = json.loads(f.body)
    assert fb["status"] == 489
    assert fb["sourceMessageId"] == res.message_id
    assert fb["maxRetries"] == 3
    assert isinstance(fb["dlqId"], str)
    rx.assert_quiet(path, 1, 0.2)


def test_group_callback_has_topic_and_endpoint_names(client, rx):
    name = unique("cb-grp")
    p1, cb = unique_path("cbg"), unique_path("cbg-cb")
    client.url_group.upsert_endpoints(name, [{"name": "named-ep", "url": rx.url + p1}])
    (res,) = client.message.publish_json(url_group=name, body={"g": 1}, callback=rx.url + cb)
    (c,) = rx.wait_for(cb, 1)
    body = json.loads(c.body)
    assert body["sourceMessageId"] == res.message_id
    assert body["topicName"] == name
    assert body["endpointName"] == "named-ep"
    assert body["url"] == rx.url + p1
    assert json.loads(unb64(body["sourceBody"])) == {"g": 1}


def test_callback_is_a_logged_message_of_its_own(client, rx):
    path, cb = unique_path("cbl"), unique_path("cbl-cb")
    res = client.message.publish(url=rx.url + path, body="x", callback=rx.url + cb)
    (c,) = rx.wait_for(cb, 1)
    wait_for_state(client, res.message_id, "DELIVERED")
    assert message_states(client, res.message_id) == ["CREATED", "ACTIVE", "DELIVERED"]
    assert wait_for_state(client, c.headers["upstash-message-id"], "DELIVERED") == ["CREATED", "ACTIVE", "DELIVERED"]
