"""Flow control through the official SDK: publish with flow_control=FlowControl(...), and
client.flow_control.get/pause/resume/pin/unpin/reset_rate/get_global_parallelism (the Python SDK
has no list method). Limits are observed at a local receiver on the server's controllable
clock."""

import pytest

from qstash.errors import QStashError
from qstash.message import FlowControl

from support import Reply, is_status, logs_where, unique, unique_path, wait_until


def wait_for_info(client, key, predicate, what):
    seen = {}

    def check():
        seen["info"] = client.flow_control.get(key)
        return seen["info"] if predicate(seen["info"]) else None

    try:
        return wait_until(check, what=f"{what} on {key}")
    except AssertionError as error:
        raise AssertionError(f"{error} (last: {seen.get('info')})") from None


def test_get_right_after_publish_and_message_fields(client, rx):
    key = unique("fc-cfg")
    res = client.message.publish(
        url=rx.url + unique_path("fc-cfg"),
        body="x",
        delay=600,
        flow_control=FlowControl(key=key, parallelism=2, rate=3, period=60),
    )
    info = client.flow_control.get(key)
    assert info.key == key
    assert (info.parallelism_max, info.rate_max, info.rate_period) == (2, 3, 60)
    assert (info.parallelism_count, info.wait_list_size) == (0, 0)
    assert (info.is_paused, info.is_pinned_parallelism, info.is_pinned_rate) == (False, False, False)

    message = client.message.get(res.message_id)
    fc = message.flow_control
    assert (fc.key, fc.parallelism, fc.rate, fc.period) == (key, 2, 3, 60)
    entries = logs_where(client, {"message_id": res.message_id})
    assert entries and all(e.flow_control is not None and e.flow_control.key == key for e in entries)
    client.message.cancel(res.message_id)


@pytest.mark.parametrize(
    "flow_control, expected",
    [
        ({"rate": 1}, (None, 1, 1)),
        ({"parallelism": 5}, (5, None, 1)),
        ({"rate": 23, "period": "1h30m3s"}, (None, 23, 5403)),
        ({"parallelism": 3, "rate": 4, "period": "2s"}, (3, 4, 2)),
        ({"rate": 2, "period": "1d"}, (None, 2, 86400)),
        ({"rate": 2, "period": 90}, (None, 2, 90)),
    ],
)
def test_reported_values_and_period_default(client, rx, flow_control, expected):
    key = unique("fc-def")
    res = client.message.publish(
        url=rx.url + unique_path("fc-def"), body="x", delay=600, flow_control=FlowControl(key=key, **flow_control)
    )
    fc = client.message.get(res.message_id).flow_control
    assert (fc.key, fc.parallelism, fc.rate, fc.period) == (key, *expected)
    info = client.flow_control.get(key)
    assert (info.parallelism_max, info.rate_max) == (expected[0] or 0, expected[1] or 0)
    client.message.cancel(res.message_id)


def test_config_updates_highest_pending_wins(client, rx):
    key = unique("fc-update")
    url = rx.url + unique_path("fc-update")

    def limits():
        i = client.flow_control.get(key)
        return (i.parallelism_max, i.rate_max, i.rate_period)

    a = client.message.publish(url=url, delay=600, flow_control=FlowControl(key=key, parallelism=4, rate=5, period=10))
    assert limits() == (4, 5, 10)
    b = client.message.publish(url=url, delay=600, flow_control=FlowControl(key=key, parallelism=1, rate=2, period=60))
    assert limits() == (4, 5, 10), "the older, higher limits still apply while it is pending"
    client.message.cancel(a.message_id)
    wait_until(lambda: limits() == (1, 2, 60), what="the newer config once the older message is gone")
    client.message.cancel(b.message_id)


def test_invalid_values_are_400(client, rx):
    url = rx.url + unique_path("fc-bad")
    for fc in (
        FlowControl(key=unique("p0"), parallelism=0, rate=1),
        FlowControl(key=unique("r0"), rate=0),
        FlowControl(key=unique("long"), rate=1, period="8d"),
        FlowControl(key=unique("period-only"), period=10),
    ):
        with pytest.raises(QStashError) as info:
            client.message.publish(url=url, body="x", flow_control=fc)
        assert is_status(info.value, 400), f"{fc}: {info.value}"


def test_key_with_a_colon(client, rx):
    key = f"user:{unique('c')}"
    res = client.message.publish(url=rx.url + unique_path("fc-colon"), delay=60, flow_control=FlowControl(key=key, rate=2))
    assert client.flow_control.get(key).rate_max == 2
    client.flow_control.pause(key)
    assert client.flow_control.get(key).is_paused is True
    client.flow_control.resume(key)
    assert client.flow_control.get(key).is_paused is False
    assert client.message.get(res.message_id).flow_control.key == key
    client.message.cancel(res.message_id)


def test_unknown_key_is_404(client):
    with pytest.raises(QStashError) as info:
        client.flow_control.get(unique("fc-unknown"))
    assert is_status(info.value, 404), str(info.value)


def test_rate_limit_per_window(server, client, rx):
    key = unique("fc-rate")
    path = unique_path("fc-rate")
    for i in range(5):
        client.message.publish(url=rx.url + path, body=f"r{i}", flow_control=FlowControl(key=key, rate=2, period="1m"))
    rx.wait_for(path, 2)
    rx.assert_quiet(path, 2, 0.5)
    info = wait_for_info(client, key, lambda i: i.wait_list_size == 3, "3 waiting")
    assert (info.rate_max, info.rate_count, info.rate_period) == (2, 2, 60)

    server.advance("61s")
    rx.wait_for(path, 4)
    rx.assert_quiet(path, 4, 0.5)
    wait_for_info(client, key, lambda i: i.wait_list_size == 1, "1 waiting")
    server.advance("61s")
    got = rx.wait_for(path, 5)
    rx.assert_quiet(path, 5, 0.2)
    assert sorted(d.body for d in got) == ["r0", "r1", "r2", "r3", "r4"]
    wait_for_info(client, key, lambda i: i.wait_list_size == 0, "empty wait list")


def test_parallelism_one_and_global_parallelism(client, rx):
    key = unique("fc-par")
    path = unique_path("fc-par")
    rx.script(path, Reply(delay=0.6), Reply(delay=0.3), Reply(delay=0.3))
    for i in range(3):
        client.message.publish(url=rx.url + path, body=f"p{i}", flow_control={"key": key, "parallelism": 1})
    rx.wait_for(path, 1)
    info = wait_for_info(client, key, lambda i: i.parallelism_count == 1 and i.wait_list_size == 2, "1 in flight, 2 waiting")
    assert info.parallelism_max == 1
    glob = client.flow_control.get_global_parallelism()
    assert glob.parallelism_count >= 1 and glob.parallelism_max > 0

    got = rx.wait_for(path, 3)
    assert got[1].at - got[0].at >= 0.58
    assert got[2].at - got[1].at >= 0.28
    wait_for_info(client, key, lambda i: i.parallelism_count == 0 and i.wait_list_size == 0, "idle")
    glob = client.flow_control.get_global_parallelism()
    assert isinstance(glob.parallelism_count, int) and glob.parallelism_max > 0


def test_pause_and_resume(client, rx):
    key = unique("fc-pause")
    path = unique_path("fc-pause")
    fc = FlowControl(key=key, parallelism=5)
    client.message.publish(url=rx.url + path, body="before", flow_control=fc)
    rx.wait_for(path, 1)
    client.flow_control.pause(key)
    assert client.flow_control.get(key).is_paused is True
    client.message.publish(url=rx.url + path, body="held-1", flow_control=fc)
    client.message.publish(url=rx.url + path, body="held-2", flow_control=fc)
    rx.assert_quiet(path, 1, 0.5)
    wait_for_info(client, key, lambda i: i.wait_list_size == 2, "2 waiting while paused")

    client.flow_control.resume(key)
    got = rx.wait_for(path, 3)
    assert sorted(d.body for d in got) == ["before", "held-1", "held-2"]
    info = wait_for_info(client, key, lambda i: i.wait_list_size == 0, "empty wait list")
    assert info.is_paused is False


def test_pin_and_unpin(client, rx):
    key = unique("fc-pin")
    path = unique_path("fc-pin")
    pending = client.message.publish(
        url=rx.url + path, body="pending", delay=3600, flow_control=FlowControl(key=key, parallelism=1, rate=1)
    )
    client.flow_control.pin(key, {"parallelism": 3, "rate": 20, "period": 120})
    info = client.flow_control.get(key)
    assert (info.parallelism_max, info.rate_max, info.rate_period) == (3, 20, 120)
    assert (info.is_pinned_parallelism, info.is_pinned_rate) == (True, True)

    other = client.message.publish(
        url=rx.url + path, body="x", delay=3600, flow_control=FlowControl(key=key, parallelism=9, rate=50)
    )
    info = client.flow_control.get(key)
    assert (info.parallelism_max, info.rate_max) == (3, 20)

    client.flow_control.unpin(key, {"parallelism": True})  # sent as parallelism=true
    info = client.flow_control.get(key)
    assert (info.is_pinned_parallelism, info.is_pinned_rate) == (False, True)
    assert (info.rate_max, info.rate_period) == (20, 120)
    client.flow_control.unpin(key, {"rate": True, "parallelism": False})
    info = client.flow_control.get(key)
    assert (info.is_pinned_parallelism, info.is_pinned_rate) == (False, False)
    client.message.cancel_many([pending.message_id, other.message_id])


def test_pin_without_values_is_400(client, rx):
    key = unique("fc-pin-empty")
    client.message.publish(url=rx.url + unique_path("fc-pin-empty"), body="x", flow_control=FlowControl(key=key, rate=5))
    with pytest.raises(QStashError) as info:
        client.flow_control.pin(key, {})
    assert is_status(info.value, 400), str(info.value)


def test_pinned_rate_gates_delivery(server, client, rx):
    key = unique("fc-pin-gate")
    path = unique_path("fc-pin-gate")
    fc = FlowControl(key=key, rate=100)
    client.message.publish(url=rx.url + path, body="first", flow_control=fc)
    rx.wait_for(path, 1)
    client.flow_control.pin(key, {"rate": 1, "period": 60})
    client.message.publish(url=rx.url + path, body="a", flow_control=fc)
    client.message.publish(url=rx.url + path, body="b", flow_control=fc)
    rx.wait_for(path, 2)
    rx.assert_quiet(path, 2, 0.5)
    server.advance("61s")
    rx.wait_for(path, 3)
    client.flow_control.unpin(key, {"rate": True, "parallelism": True})


def test_reset_rate_releases_a_waiting_message(server, client, rx):
    key = unique("fc-reset")
    path = unique_path("fc-reset")
    fc = FlowControl(key=key, rate=1, period="1h")
    client.message.publish(url=rx.url + path, body="one", flow_control=fc)
    client.message.publish(url=rx.url + path, body="two", flow_control=fc)
    rx.wait_for(path, 1)
    rx.assert_quiet(path, 1, 0.4)
    before = wait_for_info(client, key, lambda i: i.wait_list_size == 1 and i.rate_count == 1, "one waiting")
    server.advance("10s")
    client.flow_control.reset_rate(key)
    got = rx.wait_for(path, 2)
    assert [d.body for d in got] == ["one", "two"]
    after = wait_for_info(client, key, lambda i: i.wait_list_size == 0, "empty wait list")
    assert after.rate_count == 1
    assert after.rate_period_start >= before.rate_period_start + 10
    assert abs(after.rate_period_start - server.clock()["now"] // 1000) <= 5
