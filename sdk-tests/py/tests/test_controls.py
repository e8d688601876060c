"""The test controls under /__qstash/ used the way a test suite would, around SDK calls:
wait until idle instead of sleeping, deliver a delayed message now, run a schedule now, and
reset a user's state between tests."""

import pytest

from support import Reply, message_states, unique_path


def test_wait_idle_returns_once_deliveries_and_due_retries_are_done(server, client, rx):
    path = unique_path("idle")
    rx.script(path, Reply(status=500), Reply(delay=0.3))
    res = client.message.publish(url=rx.url + path, body="x", retries=1, retry_delay="0")
    assert server.wait_idle() == {"idle": True, "due": 0, "inFlight": 0, "gated": 0}
    assert len(rx.on(path)) == 2
    assert message_states(client, res.message_id)[-1] == "DELIVERED"


def test_deliver_a_delayed_message_now(server, client, rx):
    path = unique_path("deliver-now")
    res = client.message.publish(url=rx.url + path, body="later", delay="7d")
    r = server.raw("POST", f"/__qstash/messages/{res.message_id}/deliver")
    assert r.status_code == 200, r.text
    server.wait_idle()
    [d] = rx.on(path)
    assert d.body == "later"


def test_run_a_schedule_now(server, client, rx):
    path = unique_path("run-now")
    schedule_id = client.schedule.create(destination=rx.url + path, cron="0 0 1 1 *", body="tick")
    r = server.raw("POST", f"/__qstash/schedules/{schedule_id}/run")
    assert r.status_code == 200, r.text
    assert len(r.json()["messageIds"]) == 1
    server.wait_idle()
    [d] = rx.on(path)
    assert d.headers["upstash-schedule-id"] == schedule_id
    client.schedule.delete(schedule_id)


def test_reset_wipes_the_users_state_and_leaves_the_others(server, client, rx):
    path = unique_path("reset")
    other = server.client("testUser1")
    kept = other.message.publish(url=rx.url + path, body="x", delay="1d").message_id
    client.schedule.create(destination=rx.url + path, cron="0 0 1 1 *")
    rx.script(path, Reply(status=500))
    client.message.publish(url=rx.url + path, body="x", retries=0)
    server.wait_idle()
    assert client.dlq.list().messages

    server.reset()
    assert client.schedule.list() == []
    assert client.dlq.list().messages == []
    assert other.message.get(kept).message_id == kept
    server.reset(all=True)
    with pytest.raises(Exception):
        other.message.get(kept)
