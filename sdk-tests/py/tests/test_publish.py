"""message.publish / publish_json through the official SDK, delivered to a local receiver that
verifies every signature with qstash.Receiver."""

import json

import pytest

from qstash import Receiver
from qstash.errors import SignatureError

from qstash.log import LogState

from support import USERS, message_states, unique_path, wait_for_state


def test_publish_delivers_once_with_a_valid_signature(client, rx):
    path = unique_path("plain")
    res = client.message.publish(url=rx.url + path, body="hello world", content_type="text/plain")
    assert res.message_id.startswith("msg_")
    assert res.deduplicated is False

    (got,) = rx.wait_for(path, 1)
    rx.assert_quiet(path, 1)
    assert got.method == "POST"
    assert got.body == "hello world"
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["upstash-message-id"] == res.message_id
    assert got.headers["upstash-retried"] == "0"
    assert got.headers["user-agent"] == "Upstash-QStash"
    assert got.verify_error is None

    assert wait_for_state(client, res.message_id, "DELIVERED") == ["CREATED", "ACTIVE", "DELIVERED"]


def test_receiver_rejects_tampered_body_other_url_and_foreign_keys(client, rx):
    path = unique_path("tamper")
    client.message.publish(url=rx.url + path, body="original body")
    (got,) = rx.wait_for(path, 1)
    assert got.verify_error is None

    receiver = Receiver(USERS["default"]["current"], USERS["default"]["next"])
    receiver.verify(signature=got.signature, body="original body", url=got.url)
    with pytest.raises(SignatureError):
        receiver.verify(signature=got.signature, body="original body!", url=got.url)
    with pytest.raises(SignatureError):
        receiver.verify(signature=got.signature, body="original body", url=got.url + "/other")
    foreign = Receiver(USERS["testUser1"]["current"], USERS["testUser1"]["next"])
    with pytest.raises(SignatureError):
        foreign.verify(signature=got.signature, body="original body")


def test_publish_json_serializes_the_body(client, rx):
    path = unique_path("json")
    payload = {"hello": "world", "n": 42, "nested": {"list": [1, 2, 3]}, "unicode": "çé✓"}
    res = client.message.publish_json(url=rx.url + path, body=payload)
    assert res.message_id.startswith("msg_")
    (got,) = rx.wait_for(path, 1)
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == payload
    assert got.verify_error is None
    rx.assert_quiet(path, 1, 0.2)


def test_forwarded_headers_and_method(client, rx):
    path = unique_path("fwd")
    res = client.message.publish(
        url=rx.url + path,
        method="PUT",
        body="put-body",
        content_type="text/x-custom",
        headers={"X-Custom-Header": "custom-value", "Upstash-Forward-Explicit": "explicit-value"},
    )
    (got,) = rx.wait_for(path, 1)
    assert got.method == "PUT"
    assert got.body == "put-body"
    assert got.headers["x-custom-header"] == "custom-value"
    assert got.headers["explicit"] == "explicit-value"
    assert got.headers["content-type"] == "text/x-custom"
    assert "authorization" not in got.headers, "the QStash token must not be forwarded"
    assert not any(name.startswith("upstash-forward") for name in got.headers)
    assert got.headers["upstash-message-id"] == res.message_id


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_other_methods(client, rx, method):
    path = unique_path(method.lower())
    client.message.publish(url=rx.url + path, method=method)
    (got,) = rx.wait_for(path, 1)
    assert got.method == method
    assert got.verify_error is None


def test_query_string_is_delivered_and_signed(client, rx):
    path = unique_path("query")
    url = f"{rx.url}{path}?a=1&b=two"
    client.message.publish(url=url, body="q")
    (got,) = rx.wait_for(path, 1)
    assert got.target == f"{path}?a=1&b=two"
    assert got.url == url
    assert got.verify_error is None


def test_message_get_right_after_publish(client, rx):
    path = unique_path("get-now")
    res = client.message.publish(
        url=rx.url + path,
        body="read me",
        content_type="text/plain",
        headers={"X-Kept": "yes"},
        retries=2,
    )
    msg = client.message.get(res.message_id)
    assert msg.message_id == res.message_id
    assert msg.url == rx.url + path
    assert msg.method == "POST"
    assert msg.body == "read me"
    assert msg.max_retries == 2
    assert isinstance(msg.created_at, int)
    assert isinstance(msg.not_before, int)
    headers = {k.lower(): v for k, v in (msg.headers or {}).items()}
    assert headers["x-kept"] == ["yes"]
    rx.wait_for(path, 1)


def test_delayed_message_waits_for_the_clock(server, client, rx):
    path = unique_path("delay")
    before = server.clock()["now"]
    res = client.message.publish(url=rx.url + path, body="later", delay=3600, headers={"X-Delayed": "1"})

    msg = client.message.get(res.message_id)
    assert msg.body == "later"
    assert msg.created_at >= before
    assert msg.not_before >= msg.created_at + 3_600_000 - 1000

    rx.assert_quiet(path, 0)
    server.advance("3590s")
    rx.assert_quiet(path, 0)
    server.advance("20s")
    (got,) = rx.wait_for(path, 1)
    assert got.body == "later"
    assert got.headers["x-delayed"] == "1"
    # PyJWT rejects a token whose iat lies in the future: the signature must still verify
    # after the server clock was moved forward.
    assert got.verify_error is None
    assert wait_for_state(client, res.message_id, "DELIVERED") == ["CREATED", "ACTIVE", "DELIVERED"]


def test_delay_as_string(server, client, rx):
    path = unique_path("delay-str")
    res = client.message.publish(url=rx.url + path, body="x", delay="2h")
    msg = client.message.get(res.message_id)
    assert msg.not_before - msg.created_at >= 7_200_000 - 1000
    server.advance("7100s")
    rx.assert_quiet(path, 0)
    server.advance("200s")
    rx.wait_for(path, 1)


def test_not_before(server, client, rx):
    path = unique_path("notbefore")
    not_before = server.clock()["now"] // 1000 + 1800
    res = client.message.publish(url=rx.url + path, body="nb", not_before=not_before)
    assert client.message.get(res.message_id).not_before == not_before * 1000
    server.advance("1790s")
    rx.assert_quiet(path, 0)
    server.advance("20s")
    rx.wait_for(path, 1)


def test_label_on_message_and_as_logs_filter(server, client, rx):
    path = unique_path("label")
    label = unique_path("lbl").strip("/")
    res = client.message.publish(url=rx.url + path, body="l", label=label, delay=600)
    assert client.message.get(res.message_id).label == label

    server.advance("700s")
    rx.wait_for(path, 1)
    wait_for_state(client, res.message_id, "DELIVERED")
    logs = client.log.list(filter={"label": label}).logs
    assert len(logs) >= 3
    assert all(entry.message_id == res.message_id and entry.label == label for entry in logs)
    assert client.log.list(filter={"label": label + "-other"}).logs == []


def test_exactly_one_delivered_entry(client, rx):
    path = unique_path("states")
    res = client.message.publish(url=rx.url + path, body="s")
    rx.wait_for(path, 1)
    wait_for_state(client, res.message_id, "DELIVERED")
    rx.assert_quiet(path, 1)
    assert message_states(client, res.message_id) == ["CREATED", "ACTIVE", "DELIVERED"]
    delivered = client.log.list(filter={"message_id": res.message_id, "state": LogState.DELIVERED})
    assert len(delivered.logs) == 1


def test_retries_above_the_plan_are_a_quota_error_412(client, rx):
    from qstash.errors import QStashError

    with pytest.raises(QStashError) as info:
        client.message.publish(url=rx.url + unique_path("quota"), body="x", retries=6)
    assert "412" in str(info.value)
    assert "Upstash-Retries" in str(info.value)


def test_forwarded_framing_headers_do_not_reach_the_destination(client, rx):
    path = unique_path("framing")
    body = "a body longer than five bytes"
    res = client.message.publish(
        url=rx.url + path,
        body=body,
        headers={"Content-Length": "5", "Host": "evil.example", "Connection": "close", "X-Kept": "yes"},
    )
    (got,) = rx.wait_for(path, 1)
    assert got.body == body
    assert got.verify_error is None
    assert got.headers.get("host") != "evil.example"
    assert got.headers["x-kept"] == "yes"
    wait_for_state(client, res.message_id, "DELIVERED")
