"""A workflow test app: Flask with the published ``upstash-workflow`` 2.0.0 adapter
(``upstash_workflow.flask.Serve``), as a user would write one, on a local werkzeug server.

Tests define workflows with ``app.define(name, route_function, **serve_options)`` (served at
``/wf/<name>``). Every request is recorded (path, headers, body, the SDK's answer) and route
functions write what they see with ``app.note(context, kind, data)``. The app also serves a
third-party API for ``context.call`` (``/third/...``, scriptable replies) and failure URLs
(``/failure/...``).

The env given to the SDK holds the server's URL, the token and the signing keys, so the SDK's
Receiver verifies every workflow request (a bad signature makes it answer 500).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from flask import Flask, Response, request
from upstash_workflow.flask import Serve
from werkzeug.serving import make_server

WAIT_S = 10.0


@dataclass
class Call:
    method: str
    path: str
    target: str
    headers: Dict[str, str]  # lower-cased names
    body: str
    at: float = 0.0
    status: Optional[int] = None
    answer: Optional[str] = None
    done_at: Optional[float] = None


@dataclass
class Reply:
    status: int = 200
    body: str = '{"ok": true}'
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def workflow_env(server_url: str, user: Dict[str, str]) -> Dict[str, Optional[str]]:
    return {
        "QSTASH_URL": server_url,
        "QSTASH_TOKEN": user["token"],
        "QSTASH_CURRENT_SIGNING_KEY": user["current"],
        "QSTASH_NEXT_SIGNING_KEY": user["next"],
    }


class WorkflowApp:
    def __init__(self, server_url: str, user: Dict[str, str]) -> None:
        self.env = workflow_env(server_url, user)
        # Flask refuses new routes once it served a request: each workflow gets its own
        # Flask app (as a separate service would), behind one dispatcher.
        self.flask = Flask("workflow_app")
        self._workflows: Dict[str, Flask] = {}
        self.calls: List[Call] = []
        self.journal: List[Dict[str, Any]] = []
        self._scripts: Dict[str, List[Reply]] = {}
        self._cond = threading.Condition()
        self._install_hooks(self.flask)
        self._install_scripted_routes()
        self._httpd = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def _dispatch(self, environ, start_response):
        parts = environ.get("PATH_INFO", "").split("/")
        target = self._workflows.get(parts[2]) if len(parts) > 2 and parts[1] == "wf" else None
        return (target or self.flask)(environ, start_response)

    def _install_hooks(self, flask: Flask) -> None:
        app = self

        @flask.before_request
        def _record() -> None:
            call = Call(
                method=request.method,
                path=request.path,
                target=request.full_path.rstrip("?"),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.get_data(as_text=True),
                at=time.monotonic(),
            )
            request.environ["wf.call"] = call
            with app._cond:
                app.calls.append(call)
                app._cond.notify_all()

        @flask.after_request
        def _answered(response: Response) -> Response:
            call = request.environ.get("wf.call")
            if call is not None:
                call.answer = response.get_data(as_text=True)
                call.done_at = time.monotonic()
                with app._cond:
                    call.status = response.status_code
                    app._cond.notify_all()
            return response

    def _install_scripted_routes(self) -> None:
        app = self

        @self.flask.route("/third/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @self.flask.route("/failure/<path:rest>", methods=["POST"])
        def _scripted(rest: str) -> Response:
            with app._cond:
                queue = app._scripts.get(request.path)
                reply = queue.pop(0) if queue else Reply()
            if reply.delay:
                time.sleep(reply.delay)
            headers = {"Content-Type": "application/json", **reply.headers}
            return Response(reply.body, status=reply.status, headers=headers)

    def define(self, name: str, route_function: Callable[..., Any], **options: Any) -> str:
        """Serves ``route_function`` at /wf/<name> with ``Serve.route``; returns its URL."""
        flask = Flask(f"workflow_{name}")
        self._install_hooks(flask)
        Serve(flask).route(f"/wf/{name}", env=self.env, **options)(route_function)
        self._workflows[name] = flask
        return f"{self.url}/wf/{name}"

    def note(self, context: Any, kind: str, data: Any) -> None:
        with self._cond:
            self.journal.append({"run": context.workflow_run_id, "kind": kind, "data": data})
            self._cond.notify_all()

    def notes(self, run: str, kind: str) -> List[Any]:
        with self._cond:
            return [j["data"] for j in self.journal if j["run"] == run and j["kind"] == kind]

    def notes_of_kind(self, kind: str) -> List[Dict[str, Any]]:
        with self._cond:
            return [j for j in self.journal if j["kind"] == kind]

    def wait_note(self, kind: str, n: int = 1, timeout: float = WAIT_S) -> List[Dict[str, Any]]:
        """Waits until the journal has ``n`` notes of ``kind`` (any run); returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [j for j in self.journal if j["kind"] == kind]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [j["kind"] for j in self.journal]
                    raise AssertionError(f"timed out waiting for {n} '{kind}' note(s); journal: {kinds}")
                self._cond.wait(left)

    def on(self, path: str) -> List[Call]:
        with self._cond:
            return [c for c in self.calls if c.path == path]

    def of_run(self, run: str, timeout: float = WAIT_S) -> List[Call]:
        """The run's requests, once each has been answered (the server may see a run end,
        through the SDK's own call, before the app has recorded its answer to the last
        step)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [c for c in self.calls if c.headers.get("upstash-workflow-runid") == run]
                if all(c.status is not None for c in got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for the answers to run {run}'s requests")
                self._cond.wait(left)

    def wait_for(self, path: str, n: int = 1, timeout: float = WAIT_S) -> List[Call]:
        """Waits until ``path`` got ``n`` answered requests; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [c for c in self.calls if c.path == path]
                if len(got) >= n and all(c.status is not None for c in got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {n} answered request(s) to {path}; got {len(got)}")
                self._cond.wait(left)

    def script(self, path: str, *replies: Reply) -> None:
        with self._cond:
            self._scripts.setdefault(path, []).extend(replies)

    def assert_no_sdk_errors(self) -> None:
        bad = [c for c in self.calls if "Failed to verify" in (c.answer or "")]
        assert not bad, "the SDK rejected: " + "; ".join(f"{c.target} -> {c.status} {c.answer}" for c in bad)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def delivered_steps(call: Call) -> List[Dict[str, Any]]:
    """The steps array a workflow request carried, each entry's body decoded."""
    import base64

    return [
        {**e, "decoded": base64.b64decode(e["body"]).decode("utf-8")} for e in json.loads(call.body or "[]")
    ]
