"""signing_key.get / rotate and authentication through the official SDK. Rotation is done as
testUser3 (user 4) so the default user keeps the keys the JS SDK's dev mode expects."""

import re

import pytest

from qstash import Receiver
from qstash.errors import QStashError, SignatureError

from support import USERS, Rx, is_status, make_rx, unique_path


@pytest.mark.parametrize("user", list(USERS))
def test_signing_key_get(server, user):
    keys = server.client(user).signing_key.get()
    assert keys.current == USERS[user]["current"]
    assert keys.next == USERS[user]["next"]


@pytest.mark.parametrize("user", ["default", "testUser1"])
def test_deliveries_signed_with_the_users_current_key(server, user):
    own = make_rx(user)
    try:
        path = unique_path(f"user-{user}")
        server.client(user).message.publish(url=own.url + path, body=user)
        (got,) = own.wait_for(path, 1)
        own.assert_all_verified()
        current_only = Receiver(USERS[user]["current"], USERS[user]["current"])
        current_only.verify(signature=got.signature, body=user, url=got.url)
        for other, keys in USERS.items():
            if other == user:
                continue
            with pytest.raises(SignatureError):
                Receiver(keys["current"], keys["next"]).verify(signature=got.signature, body=user, url=got.url)
    finally:
        own.close()


def test_rotate(server):
    user = "testUser3"
    client = server.client(user)
    old = USERS[user]
    before = client.signing_key.get()
    assert (before.current, before.next) == (old["current"], old["next"])

    rotated = client.signing_key.rotate()
    assert rotated.current == old["next"]
    assert re.fullmatch(r"sig_[1-9A-HJ-NP-Za-km-z]{28}", rotated.next), rotated.next
    assert rotated.next not in (old["current"], old["next"])
    after = client.signing_key.get()
    assert (after.current, after.next) == (rotated.current, rotated.next)

    # The default user is untouched.
    default = server.client().signing_key.get()
    assert (default.current, default.next) == (USERS["default"]["current"], USERS["default"]["next"])

    rx = Rx(rotated.current, rotated.next)
    try:
        path = unique_path("rotated")
        client.message.publish(url=rx.url + path, body="after rotation")
        (got,) = rx.wait_for(path, 1)
        rx.assert_all_verified()
        # Receivers still configured with the old pair accept it through their next key...
        Receiver(old["current"], old["next"]).verify(signature=got.signature, body="after rotation", url=got.url)
        # ...but the retired current key alone verifies nothing.
        with pytest.raises(SignatureError):
            Receiver(old["current"], old["current"]).verify(
                signature=got.signature, body="after rotation", url=got.url
            )
    finally:
        rx.close()


def test_wrong_token_is_401_everywhere(server, rx):
    bad = server.client(token="eyJVc2VySUQiOiJub2JvZHkiLCJQYXNzd29yZCI6Im5vcGUifQ==")
    path = unique_path("unauthorized")
    calls = [
        lambda: bad.message.publish(url=rx.url + path, body="x"),
        lambda: bad.message.publish_json(url=rx.url + path, body={"a": 1}),
        lambda: bad.message.get("msg_x"),
        lambda: bad.message.cancel("msg_x"),
        lambda: bad.message.cancel_many(["msg_x"]),
        lambda: bad.message.cancel_all(),
        lambda: bad.log.list(),
        lambda: bad.dlq.list(),
        lambda: bad.dlq.get("1-0"),
        lambda: bad.dlq.delete("1-0"),
        lambda: bad.dlq.delete_many(["1-0"]),
        lambda: bad.signing_key.get(),
        lambda: bad.signing_key.rotate(),
    ]
    for call in calls:
        with pytest.raises(QStashError) as info:
            call()
        assert is_status(info.value, 401), str(info.value)
    rx.assert_quiet(path, 0)


def test_missing_token_is_401_with_error_body(server):
    # The SDK cannot send an empty token (httpx rejects "Bearer "), so this one is raw.
    res = server.http.get(server.url + "/v2/keys")
    assert res.status_code == 401
    assert isinstance(res.json()["error"], str)
