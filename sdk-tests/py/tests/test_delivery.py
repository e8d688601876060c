"""Delivery details through the Python SDK: exact URLs, timeouts, unreachable endpoints,
Retry-After, cancelling during a retry wait, input validation and retention."""

import base64
import hashlib
import socket

import jwt

import pytest

from qstash.errors import QStashError
from qstash.log import LogState

from support import Reply, Rx, USERS, is_status, message_states, unique_path, wait_for_state


def test_percent_encoded_url_is_delivered_and_signed_exactly(client, rx):
    path = unique_path("enc")
    url = f"{rx.url}{path}/a%20b?q=a%2Fb&x=%C3%A9"
    client.message.publish(url=url, body="enc")
    (got,) = rx.wait_for(f"{path}/a%20b", 1)
    assert got.target == f"{path}/a%20b?q=a%2Fb&x=%C3%A9"
    assert got.url == url
    assert got.verify_error is None


def test_localhost_destination(client):
    local = Rx(USERS["default"]["current"], USERS["default"]["next"])
    try:
        port = local.url.rsplit(":", 1)[1]
        local.url = f"http://localhost:{port}"  # rebuild URLs the way they were published
        path = unique_path("localhost")
        res = client.message.publish(url=local.url + path, body="l")
        (got,) = local.wait_for(path, 1)
        assert got.url == local.url + path
        local.assert_all_verified()
        assert client.message.get(res.message_id).url == local.url + path
    finally:
        local.close()


def test_unicode_body(client, rx):
    path = unique_path("unicode")
    body = "héllo wörld ✓ 🚀"
    client.message.publish(url=rx.url + path, body=body, content_type="text/plain; charset=utf-8")
    (got,) = rx.wait_for(path, 1)
    assert got.body == body
    assert got.verify_error is None


def test_binary_body(server, client):
    raw_rx = Rx(USERS["default"]["current"], USERS["default"]["next"])
    try:
        path = unique_path("binary")
        data = bytes([0xFF, 0xFE, 0x00, 0x80, 0x41])
        res = client.message.publish(
            url=raw_rx.url + path, body=data, content_type="application/octet-stream", delay=60
        )
        msg = client.message.get(res.message_id)
        assert msg.body_base64 == base64.b64encode(data).decode()
        assert msg.body is None
        server.advance("70s")
        (got,) = raw_rx.wait_for(path, 1)
        assert got.raw_body == data
        # qstash.Receiver takes a str body, so check the body claim of the JWT directly.
        claims = jwt.decode(got.signature, USERS["default"]["current"], algorithms=["HS256"], issuer="Upstash")
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
        assert claims["body"].rstrip("=") == digest
        assert claims["sub"] == got.url
    finally:
        raw_rx.close()


def test_caller_ip(server, client, rx):
    path = unique_path("caller-ip")
    res = client.message.publish(url=rx.url + path, body="ip", delay=30)
    assert client.message.get(res.message_id).caller_ip == "127.0.0.1"
    server.advance("40s")
    (got,) = rx.wait_for(path, 1)
    assert got.headers["upstash-caller-ip"] == "127.0.0.1"


def test_log_bodies_are_base64(client, rx):
    path = unique_path("log-bodies")
    rx.script(path, Reply(status=500, body="the error body"))
    message_id = client.message.publish(url=rx.url + path, body="the request body", retries=0).message_id
    wait_for_state(client, message_id, "FAILED")
    logs = client.log.list(filter={"message_id": message_id}).logs
    for entry in logs:
        assert base64.b64decode(entry.body_base64).decode() == "the request body", entry.state
    (error,) = [entry for entry in logs if entry.state == LogState.ERROR]
    assert error.response_status == 500
    assert base64.b64decode(error.response_body).decode() == "the error body"


def test_timeout_fails_the_attempt(client, rx):
    path = unique_path("timeout")
    rx.script(path, Reply(status=200, delay=4.0))
    message_id = client.message.publish(url=rx.url + path, body="t", timeout=1, retries=0).message_id
    assert wait_for_state(client, message_id, "FAILED", timeout=8) == ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    (entry,) = client.dlq.list(filter={"message_id": message_id}).messages
    assert entry.response_status == 0


def test_unreachable_endpoint_ends_in_dlq(server, client):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    message_id = client.message.publish(url=f"http://127.0.0.1:{port}/nobody", body="u", retries=1).message_id
    wait_for_state(client, message_id, "RETRY")
    server.advance("13s")
    states = wait_for_state(client, message_id, "FAILED")
    assert states == ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]
    (entry,) = client.dlq.list(filter={"message_id": message_id}).messages
    assert entry.response_status == 0


def test_retry_after_sets_the_next_attempt(server, client, rx):
    path = unique_path("retry-after")
    rx.script(path, Reply(status=503, headers={"Retry-After": "40"}))
    message_id = client.message.publish(url=rx.url + path, body="r", retries=2).message_id
    wait_for_state(client, message_id, "RETRY")
    server.advance("30s")
    rx.assert_quiet(path, 1)
    server.advance("12s")
    rx.wait_for(path, 2)
    wait_for_state(client, message_id, "DELIVERED")


def test_retry_delay_expression(server, client, rx):
    path = unique_path("retry-delay")
    rx.script(path, Reply(status=500), Reply(status=500))
    message_id = client.message.publish(
        url=rx.url + path, body="x", retries=2, retry_delay="1000 * (1 + retried) * 60"
    ).message_id
    wait_for_state(client, message_id, "RETRY")
    server.advance("50s")
    rx.assert_quiet(path, 1)
    server.advance("15s")
    rx.wait_for(path, 2)
    wait_for_state(client, message_id, "RETRY", times=2)
    server.advance("100s")
    rx.assert_quiet(path, 2)
    server.advance("30s")
    rx.wait_for(path, 3)
    wait_for_state(client, message_id, "DELIVERED")


def test_cancel_while_waiting_for_retry(server, client, rx):
    path = unique_path("cancel-retry")
    rx.script(path, Reply(status=500))
    message_id = client.message.publish(url=rx.url + path, body="c", retries=3).message_id
    wait_for_state(client, message_id, "RETRY")
    assert client.message.get(message_id).message_id == message_id
    in_progress = client.log.list(filter={"message_id": message_id, "state": LogState.IN_PROGRESS}).logs
    assert sorted(entry.state.value for entry in in_progress) == ["ACTIVE", "ERROR", "RETRY"]

    client.message.cancel(message_id)
    server.advance("1h")
    rx.assert_quiet(path, 1, 0.4)
    states = wait_for_state(client, message_id, "CANCELED")
    assert states == ["CREATED", "ACTIVE", "ERROR", "RETRY", "CANCEL_REQUESTED", "CANCELED"]
    assert client.dlq.list(filter={"message_id": message_id}).messages == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delay": "soon"},
        {"method": "FETCH"},
        {"retries": -1},
        {"retry_delay": "pow(2,"},
        {"timeout": "forever"},
        {"not_before": -5},
    ],
    ids=["delay", "method", "retries", "retry_delay", "timeout", "not_before"],
)
def test_invalid_input_is_400(client, rx, kwargs):
    path = unique_path("invalid")
    with pytest.raises(QStashError) as info:
        client.message.publish(url=rx.url + path, body="x", **kwargs)
    assert is_status(info.value, 400), str(info.value)
    rx.assert_quiet(path, 0, 0.1)


def test_invalid_destination_is_400(client):
    with pytest.raises(QStashError) as info:
        client.message.publish(url="http://", body="x")
    assert is_status(info.value, 400), str(info.value)


def test_finished_message_expires_on_the_server_clock(server, client, rx):
    path = unique_path("retention")
    message_id = client.message.publish(url=rx.url + path, body="r").message_id
    wait_for_state(client, message_id, "DELIVERED")
    assert client.message.get(message_id).message_id == message_id
    server.advance("11s")
    with pytest.raises(QStashError) as info:
        client.message.get(message_id)
    assert is_status(info.value, 404), str(info.value)
    assert message_states(client, message_id) == ["CREATED", "ACTIVE", "DELIVERED"]
