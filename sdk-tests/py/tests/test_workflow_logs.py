"""Run logs, the workflow DLQ and recovery for runs driven by the Python SDK
``upstash-workflow`` 2.0.0 (Flask). That SDK has no client for logs or the DLQ (only serving),
so the routes ``@upstash/workflow``'s Client calls are called over HTTP here, and the Python
QStash client (``qstash`` 3.4.0) checks that its plain DLQ does not list workflow entries.
What this adds to the TypeScript suite: the Python SDK's own step shapes (``sleepFor`` as
``"10m"``, ``context.call``) in the logs, and a resumed run finished by the Python SDK, which
sends its whole configuration on every step.
"""

from __future__ import annotations

import json

from support import wait_until
from workflow_app import Reply


def run_log(server, run_id: str) -> dict:
    res = server.raw("GET", "/v2/workflows/events", params={"groupBy": "workflowRunId", "workflowRunId": run_id})
    assert res.status_code == 200, res.text
    runs = res.json()["runs"]
    assert len(runs) == 1, runs
    return runs[0]


def step_named(run: dict, name: str) -> dict:
    return next(s for g in run["steps"] for s in g["steps"] if s.get("stepName") == name)


def test_a_python_run_fails_shows_in_the_logs_and_the_workflow_dlq_and_resumes_to_the_end(server, client, wf):
    api = f"{wf.url}/third/py-logged"
    wf.script("/third/py-logged", Reply(status=202, body='{"queued": true}'))
    fixed = {"yes": False}
    fine_runs = []

    def route(context):
        context.run("fine", lambda: fine_runs.append(1) or "ok")
        context.sleep("nap", "10m")
        context.call("api", url=api, method="POST", body={"x": 1})

        def broken():
            if not fixed["yes"]:
                raise ValueError("python step broke")
            return "fixed"

        context.run("broken", broken)
        wf.note(context, "done", True)

    def failure(context, fail_status, fail_response, fail_headers):
        wf.note(context, "failure", fail_status)

    wf.define("py-logged", route, retries=0, failure_function=failure)
    client.message.publish_json(url=f"{wf.url}/wf/py-logged", body={"py": 1})
    first = wf.wait_for("/wf/py-logged", 1)[0]
    run = json.loads(first.answer)["workflowRunId"]
    wait_until(lambda: step_named(run_log(server, run), "nap"), what="the sleep in the logs")
    server.advance("11m")
    wait_until(lambda: wf.notes(run, "failure"), what="the failure function")
    log = wait_until(
        lambda: (lambda r: r if r.get("failureFunction", {}).get("state") == "CALLBACK_SUCCESS" else None)(
            run_log(server, run)
        ),
        what="the failed run's log",
    )
    assert log["workflowState"] == "RUN_FAILED"
    assert json.loads(log["steps"][0]["steps"][0]["out"]) == {"py": 1}
    assert step_named(log, "fine")["out"] == '"ok"'
    nap = step_named(log, "nap")
    assert (nap["stepType"], nap["sleepFor"]) == ("SleepFor", 600)
    call = step_named(log, "api")
    assert (call["stepType"], call["callUrl"], call["callMethod"]) == ("Call", api, "POST")
    assert (call["callResponseStatus"], call["callResponseBody"]) == (202, {"queued": True})
    next_steps = [s for g in log["steps"] if g["type"] == "next" for s in g["steps"]]
    failed = [s for s in next_steps if s["state"] == "STEP_FAILED"]
    assert len(failed) == 1, next_steps
    failed = failed[0]
    assert failed["errors"][0]["status"] == 500
    assert "python step broke" in failed["errors"][0]["body"]
    assert log["failureFunction"]["failStatus"] == 500

    res = server.raw("GET", "/v2/dlq", params={"source": "workflow", "workflowRunId": run})
    entries = res.json()["messages"]
    assert len(entries) == 1, res.text
    entry = entries[0]
    assert (entry["workflowRunId"], entry["workflowUrl"]) == (run, f"{wf.url}/wf/py-logged")
    assert entry["workflowCreatedAt"] == log["workflowRunCreatedAt"]
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_SUCCESS"
    plain = client.dlq.list()
    assert entry["dlqId"] not in [m.dlq_id for m in plain.messages], "the plain DLQ leaves workflow entries out"

    fixed["yes"] = True
    res = server.raw("POST", "/v2/workflows/dlq/resume", params={"dlqIds": entry["dlqId"]})
    assert res.status_code == 200, res.text
    new_run = res.json()["workflowRuns"][0]["workflowRunId"]
    wait_until(lambda: wf.notes(new_run, "done"), what="the resumed run's end")
    assert len(fine_runs) == 1, "the resumed run does not repeat its successful steps"
    resumed = wait_until(
        lambda: (lambda r: r if r["workflowState"] == "RUN_SUCCESS" else None)(run_log(server, new_run)),
        what="the resumed run's success",
    )
    assert step_named(resumed, "broken")["out"] == '"fixed"'
    assert server.raw("GET", f"/v2/workflows/dlq/{entry['dlqId']}").status_code == 404
