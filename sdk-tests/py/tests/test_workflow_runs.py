"""Workflow runs through the Python SDK ``upstash-workflow`` 2.0.0 on Flask (its ``Serve``
adapter): a run started by publishing to the endpoint (the SDK's own first invocation), steps
returning every JSON type, 100 steps, large results, sleeps on the controlled clock,
``context.call``, the failure function and the failure URL, a run that returns early, a
second start of an active run id (deduplicated), a cancel through the raw routes, and the
run's configuration on every later call of the run.

The Python SDK 2.0 has no parallel steps, waits, invoke, client trigger or cancel; those are
covered by the TypeScript suite.
"""

from __future__ import annotations

import base64
import json
import time

from support import wait_until
from upstash_workflow.workflow_requests import _get_first_invocation_batch_body
from workflow_app import Reply, WorkflowApp, delivered_steps


def start(client, wf: WorkflowApp, name: str, body, headers=None) -> str:
    """Publishes ``body`` to workflow ``name`` (the SDK starts the run itself); the run id."""
    client.message.publish_json(url=f"{wf.url}/wf/{name}", body=body, headers=headers or {})
    first = wf.wait_for(f"/wf/{name}", 1)[0]
    assert first.status == 200, first.answer
    return json.loads(first.answer)["workflowRunId"]


def run_ended(server, run_id: str) -> bool:
    return server.raw("GET", f"/v2/workflows/runs/{run_id}").status_code == 404


def test_sequential_steps_return_every_json_type_and_each_call_carries_the_history(server, client, wf):
    def route(context):
        text = context.run("text", lambda: "hello")
        number = context.run("number", lambda: 42.5)
        obj = context.run("object", lambda: {"nested": {"list": [1, "two", None]}})
        arr = context.run("array", lambda: [True, False, 0])
        flag = context.run("boolean", lambda: False)
        nil = context.run("null", lambda: None)
        wf.note(context, "done", {
            "values": [text, number, obj, arr, flag, nil],
            "payload": context.request_payload,
            "user": context.headers.get("X-User"),
        })

    wf.define("sequential", route)
    run = start(client, wf, "sequential", {"order": 7}, headers={"X-User": "py"})
    done = wf.wait_note("done")[0]["data"]
    assert done == {
        "values": ["hello", 42.5, {"nested": {"list": [1, "two", None]}}, [True, False, 0], False, None],
        "payload": {"order": 7},
        "user": "py",
    }
    wait_until(lambda: run_ended(server, run), what="the run's end")
    calls = wf.of_run(run)
    assert len(calls) == 7, [c.answer for c in calls]
    for i, call in enumerate(calls):
        assert call.status == 200
        assert call.headers.get("x-user") == "py"
        steps = delivered_steps(call)
        assert len(steps) == i + 1
        assert steps[-1]["messageId"] == call.headers["upstash-message-id"]
    assert json.loads(delivered_steps(calls[0])[0]["decoded"]) == {"order": 7}


def test_a_run_of_100_steps_completes(server, client, wf):
    def route(context):
        total = 0
        for i in range(1, 101):
            total = context.run(f"step-{i}", lambda total=total, i=i: total + i)
        wf.note(context, "hundred", total)

    wf.define("hundred", route)
    run = start(client, wf, "hundred", {})
    assert wf.wait_note("hundred", timeout=60)[0]["data"] == 5050
    wait_until(lambda: run_ended(server, run), what="the run's end")
    assert len(wf.of_run(run)) == 101


def test_large_results_are_always_inlined_for_the_python_sdk(server, client, wf):
    def route(context):
        a = context.run("a", lambda: "a" * (600 * 1024))
        b = context.run("b", lambda: "b" * (600 * 1024))
        wf.note(context, "large", len(a) + len(b))

    wf.define("large", route)
    run = start(client, wf, "large", {})
    assert wf.wait_note("large", timeout=30)[0]["data"] == 1200 * 1024
    calls = wf.of_run(run)
    # The last call's array is over the 1 MB message size; Python cannot fetch it itself.
    assert len(delivered_steps(calls[-1])) == 3


def test_sleep_and_sleep_until_wait_for_the_server_clock(server, client, wf):
    def route(context):
        context.sleep("nap", "10m")
        wf.note(context, "woke", True)
        context.sleep_until("until", time.time() + 7200)
        wf.note(context, "slept", True)

    wf.define("sleepy", route)
    run = start(client, wf, "sleepy", {})
    time.sleep(0.3)
    assert wf.notes(run, "woke") == []
    server.advance("11m")
    wf.wait_note("woke")
    time.sleep(0.3)
    assert wf.notes(run, "slept") == []
    server.advance("2h")
    wf.wait_note("slept")
    wait_until(lambda: run_ended(server, run), what="the run's end")


def test_call_sends_the_request_unchanged_and_returns_failing_statuses_too(server, client, wf):
    api = f"{wf.url}/third/py-orders"
    wf.script("/third/py-orders", Reply(status=201, body='{"id": 9}', headers={"X-Api": "v2"}))
    wf.script("/third/py-orders", Reply(status=503, body="down"))

    def route(context):
        ok = context.call("create", url=api, method="PUT", body={"item": "book"}, headers={"X-Key": "secret"}, timeout=30)
        bad = context.call("again", url=api, method="POST", body="raw")
        wf.note(context, "called", {"ok": [ok.status, ok.body, ok.header.get("X-Api")], "bad": [bad.status, bad.body]})

    wf.define("call", route)
    start(client, wf, "call", {}, headers={"X-User": "py"})
    got = wf.wait_note("called")[0]["data"]
    assert got == {"ok": [201, {"id": 9}, ["v2"]], "bad": [503, "down"]}
    first, second = wf.on("/third/py-orders")
    assert (first.method, json.loads(first.body), first.headers["x-key"]) == ("PUT", {"item": "book"}, "secret")
    assert (second.method, json.loads(second.body)) == ("POST", "raw")
    for call in (first, second):
        assert "x-user" not in call.headers, "the run's headers are not for the third party"
        assert "upstash-workflow-runid" not in call.headers


def test_the_failure_function_gets_the_run_and_the_error_after_the_retries(server, client, wf):
    attempts = []

    def route(context):
        context.run("fine", lambda: 1)

        def broken():
            attempts.append(1)
            raise ValueError("the step broke")

        context.run("broken", broken)

    def failure(context, fail_status, fail_response, fail_headers):
        wf.note(context, "failure", {
            "status": fail_status,
            "response": fail_response,
            "payload": context.request_payload,
            "user": context.headers.get("X-User"),
        })

    wf.define("failing", route, retries=1, failure_function=failure)
    run = start(client, wf, "failing", {"order": 1}, headers={"X-User": "py"})

    def retried_or_failed():
        if wf.notes(run, "failure"):
            return True
        server.advance("15s")
        return False

    wait_until(retried_or_failed, interval=0.1, what="the failure function")
    assert wf.notes(run, "failure")[0] == {
        "status": 500, "response": "the step broke", "payload": {"order": 1}, "user": "py",
    }
    assert len(attempts) == 2, "1 attempt + 1 retry (serve(retries=1))"
    wait_until(lambda: run_ended(server, run), what="the run's end")


def test_a_failure_url_gets_the_run_fields_and_the_initial_payload(server, client, wf):
    failure_url = f"{wf.url}/failure/py"

    def route(context):
        context.run("broken", lambda: 1 / 0)

    wf.define("failing-url", route, retries=0, failure_url=failure_url)
    run = start(client, wf, "failing-url", {"initial": True})
    call = wf.wait_for("/failure/py", 1)[0]
    body = json.loads(call.body)
    assert body["workflowRunId"] == run
    assert isinstance(body["workflowCreatedAt"], int)
    assert body["url"] == f"{wf.url}/wf/failing-url"
    assert json.loads(base64.b64decode(body["sourceBody"])) == {"initial": True}
    assert body["status"] == 500
    assert "division by zero" in json.loads(base64.b64decode(body["body"]))["message"]
    assert call.headers["upstash-workflow-is-failure"] == "true"
    assert call.headers["upstash-workflow-runid"] == run


def test_a_run_that_returns_before_any_step_is_refused(server, client, wf):
    def route(context):
        if not context.request_payload.get("allowed"):
            return
        context.run("never", lambda: 1)

    wf.define("early", route)
    client.message.publish_json(url=f"{wf.url}/wf/early", body={"allowed": False}, retries=0)
    call = wf.wait_for("/wf/early", 1)[0]
    assert call.status == 400
    assert "Failed to authenticate Workflow request" in call.answer


def trigger(server, url: str, run_id: str, payload, headers=None, retries: int = 3):
    """Starts run ``run_id`` with the batch the SDK itself sends to start a run; the answer."""
    body = _get_first_invocation_batch_body(run_id, url, headers or {}, payload, retries)
    res = server.raw("POST", "/v2/batch", json=body)
    assert res.status_code == 200, res.text
    return res.json()[0]


def run_log(server, run_id: str) -> dict:
    res = server.raw("GET", "/v2/workflows/events", params={"workflowRunId": run_id})
    assert res.status_code == 200, res.text
    runs = res.json()["runs"]
    assert len(runs) == 1, runs
    return runs[0]


def test_a_second_start_of_an_active_run_id_is_deduplicated(server, client, wf):
    def route(context):
        wf.note(context, "started", context.request_payload)
        context.sleep("hold", "1h")
        wf.note(context, "done", True)

    url = wf.define("py-dedup", route)
    run = f"wfr_py_dedup_{time.time_ns()}"
    first = trigger(server, url, run, {"n": 1})
    assert not first.get("deduplicated"), first
    wait_until(lambda: wf.notes(run, "started"), what="the run's start")
    second = trigger(server, url, run, {"n": 2})
    assert second.get("deduplicated") is True, second
    assert second["messageId"] == first["messageId"], "the answer names the run's first message"
    time.sleep(0.3)
    assert len(wf.on("/wf/py-dedup")) == 1, "the duplicate delivered nothing"
    # (The SDK runs the route twice per call: a dry run for its authorization check first.)
    assert all(n == {"n": 1} for n in wf.notes(run, "started")), "the first payload only"
    server.advance("61m")
    wait_until(lambda: wf.notes(run, "done"), what="the run's last step")
    wait_until(lambda: run_ended(server, run), what="the run's end")
    assert len(wf.on("/wf/py-dedup")) == 2, "the Init call and the sleep's call"


def test_a_run_cancelled_through_the_raw_route_stops_and_is_logged_cancelled(server, client, wf):
    def route(context):
        context.run("before", lambda: 1)
        context.sleep("long", "1d")
        wf.note(context, "woke", True)

    url = wf.define("py-cancel", route)
    run = f"wfr_py_cancel_{time.time_ns()}"
    trigger(server, url, run, {})
    wait_until(
        lambda: any(s.get("stepName") == "long" for g in run_log(server, run)["steps"] for s in g["steps"]),
        what="the sleep",
    )
    res = server.raw("DELETE", f"/v2/workflows/runs/{run}", params={"cancel": "true"})
    assert res.status_code == 200, res.text
    assert run_ended(server, run)
    log = run_log(server, run)
    assert log["workflowState"] == "RUN_CANCELED"
    calls = len(wf.on("/wf/py-cancel"))
    server.advance("2d")
    time.sleep(0.3)
    assert wf.notes(run, "woke") == [], "the sleep's message was cancelled with the run"
    assert len(wf.on("/wf/py-cancel")) == calls


def test_the_run_configuration_reaches_every_later_call_of_the_run(server, client, wf):
    api = f"{wf.url}/third/py-config"

    def route(context):
        context.run("one", lambda: 1)
        context.sleep("nap", "1m")
        context.call("api", url=api, method="GET")
        context.run("two", lambda: 2)
        wf.note(context, "done", True)

    url = wf.define("py-config", route, retries=2)
    run = f"wfr_py_config_{time.time_ns()}"
    trigger(server, url, run, {"c": 1}, headers={"X-Tenant": "acme"}, retries=2)
    wait_until(
        lambda: any(s.get("stepName") == "nap" for g in run_log(server, run)["steps"] for s in g["steps"]),
        what="the sleep",
    )
    server.advance("2m")
    wait_until(lambda: wf.notes(run, "done"), what="the run's last step")
    wait_until(lambda: run_ended(server, run), what="the run's end")
    calls = wf.of_run(run)
    assert len(calls) >= 5, [c.path for c in calls]
    for c in calls:
        assert c.headers.get("x-tenant") == "acme", (c.path, c.headers)
    third = wf.on("/third/py-config")
    assert len(third) == 1
    assert "x-tenant" not in third[0].headers, "not the third party of context.call"
    log = run_log(server, run)
    steps = [s for g in log["steps"] for s in g["steps"]]
    assert all(s["retries"] == 2 for s in steps), [(s.get("stepName"), s.get("retries")) for s in steps]
