"""Helpers and fixtures for the end-to-end tests of the official QStash Python SDK against
`qstash dev` (the fixtures are registered through conftest.py).

* ``server``: the real binary named by $QSTASH_BIN, started with ``dev -port 0
  -clock-control`` once per test module and killed afterwards (and at interpreter exit).
* ``rx``: a local HTTP endpoint (http.server in a thread on 127.0.0.1:<ephemeral>) that records
  every delivery and verifies its Upstash-Signature with ``qstash.Receiver`` against the exact
  URL that was called. Replies can be scripted per path (status, headers, body, delay).

Nothing here mocks the server.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

import httpx
import pytest

from qstash import QStash, Receiver
from qstash.log import LogState

USERS: Dict[str, Dict[str, str]] = {
    "default": {
        "token": "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
        "current": "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        "next": "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    },
    "testUser1": {
        "token": "eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "current": "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
        "next": "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
    },
    "testUser2": {
        "token": "eyJVc2VySUQiOiJ0ZXN0VXNlcjIiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "current": "sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
        "next": "sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
    },
    "testUser3": {
        "token": "eyJVc2VySUQiOiJ0ZXN0VXNlcjMiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "current": "sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
        "next": "sig_7GFR4YaDshFcqsxWRZpRB161jguD",
    },
}

READY_TIMEOUT_S = 15.0
WAIT_TIMEOUT_S = 10.0


def wait_until(fn: Callable[[], Any], *, timeout: float = WAIT_TIMEOUT_S, interval: float = 0.025, what: str = "condition") -> Any:
    """Polls ``fn`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - reported on timeout
            last_error = error
        if time.monotonic() > deadline:
            detail = f": {last_error!r}" if last_error else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------
# The server process
# ------------------------------------------------------------------------------------------

_RUNNING: List[subprocess.Popen] = []


def _kill_all() -> None:
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    _RUNNING.clear()


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    _kill_all()
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


class Server:
    def __init__(self) -> None:
        binary = os.environ.get("QSTASH_BIN")
        if not binary:
            raise RuntimeError(
                "QSTASH_BIN is not set: point it at the qstash binary, "
                "e.g. QSTASH_BIN=$PWD/../../target/debug/qstash"
            )
        env = dict(os.environ)
        env.pop("QSTASH_DEV", None)
        # QSTASH_TEST_DATA_DIR=1: every server keeps its state in a fresh directory
        # (-data-dir), so the same tests check that persistence changes nothing the SDK sees.
        self.data_dir: Optional[str] = None
        args = [binary, "dev", "-port", "0", "-clock-control"]
        if os.environ.get("QSTASH_TEST_DATA_DIR") == "1":
            self.data_dir = tempfile.mkdtemp(prefix="qstash-sdk-")
            args += ["-data-dir", self.data_dir]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
        )
        _RUNNING.append(self.proc)
        self.output: List[str] = []
        self.stderr: List[str] = []
        self._url: Optional[str] = None
        self._ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT_S) or self._url is None:
            self.stop()
            raise RuntimeError(
                f"qstash dev did not print its ready line and QSTASH_URL within {READY_TIMEOUT_S} s "
                f"(exit code {self.proc.poll()})\n--- stdout ---\n{''.join(self.output)}"
                f"\n--- stderr ---\n{''.join(self.stderr[-50:])}"
            )
        self.url: str = self._url
        self.http = httpx.Client(timeout=10.0)

    def _read_stdout(self) -> None:
        running = False
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if "is running." in line:
                running = True
            match = re.match(r"^QSTASH_URL=(http://\S+)\s*$", line)
            if running and match and self._url is None:
                self._url = match.group(1)
                self._ready.set()
        self._ready.set()  # EOF: the process ended; the waiter reports it

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if len(self.stderr) > 2000:
                del self.stderr[:1000]

    def client(self, user: str = "default", token: Optional[str] = None) -> QStash:
        return QStash(token if token is not None else USERS[user]["token"], base_url=self.url)

    def raw(self, method: str, path: str, *, user: str = "default", token: Optional[str] = None, **kwargs) -> httpx.Response:
        tok = token if token is not None else USERS[user]["token"]
        headers = {"Authorization": f"Bearer {tok}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.url + path, headers=headers, **kwargs)

    def clock(self) -> Dict[str, Any]:
        res = self.raw("GET", "/__qstash/clock")
        assert res.status_code == 200, res.text
        return res.json()

    def advance(self, by: str) -> None:
        res = self.raw("POST", "/__qstash/clock/advance", params={"by": by})
        assert 200 <= res.status_code < 300, f"clock advance by {by} -> {res.status_code} {res.text}"

    def wait_idle(self, timeout: str = "10s", user: str = "default") -> Dict[str, Any]:
        """Waits (bounded) until none of the user's messages is due now, in flight or held at a
        gate (POST /__qstash/idle); fails with what is still moving on a timeout."""
        res = self.raw("POST", "/__qstash/idle", user=user, params={"timeout": timeout})
        assert res.status_code == 200, f"wait idle -> {res.status_code} {res.text}"
        return res.json()

    def reset(self, all: bool = False, user: str = "default") -> None:
        """Wipes the user's state, or every user's (POST /__qstash/reset)."""
        res = self.raw("POST", "/__qstash/reset", user=user, params={"all": "true"} if all else {})
        assert res.status_code == 200, f"reset -> {res.status_code} {res.text}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc in _RUNNING:
            _RUNNING.remove(self.proc)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        http = getattr(self, "http", None)
        if http is not None:
            http.close()


@pytest.fixture(scope="module")
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return server.client()


# ------------------------------------------------------------------------------------------
# Logs helpers (through the SDK's client.log.list)
# ------------------------------------------------------------------------------------------


def message_logs(client: QStash, message_id: str) -> list:
    """All log entries of one message, oldest first, following the cursor to the end."""
    entries: list = []
    cursor = None
    for _ in range(100):
        res = client.log.list(filter={"message_id": message_id}, cursor=cursor, count=100)
        entries.extend(res.logs)
        cursor = res.cursor
        if cursor is None:
            return list(reversed(entries))
    raise AssertionError("logs pagination did not end after 100 pages")


def logs_where(client: QStash, filter: Dict[str, Any]) -> list:
    """All log entries matching a ``client.log.list`` filter, newest first, following the cursor."""
    entries: list = []
    cursor = None
    for _ in range(100):
        res = client.log.list(filter=filter, cursor=cursor, count=1000)
        entries.extend(res.logs)
        cursor = res.cursor
        if cursor is None:
            return entries
    raise AssertionError("logs pagination did not end after 100 pages")


def message_states(client: QStash, message_id: str) -> List[str]:
    return [entry.state.value for entry in message_logs(client, message_id)]


def wait_for_state(client: QStash, message_id: str, state: str, *, times: int = 1, timeout: float = WAIT_TIMEOUT_S) -> List[str]:
    seen: Dict[str, List[str]] = {"states": []}

    def check():
        seen["states"] = message_states(client, message_id)
        return seen["states"] if seen["states"].count(state) >= times else None

    try:
        return wait_until(check, timeout=timeout, interval=0.03, what=f"{times}x {state} in the logs of {message_id}")
    except AssertionError as error:
        raise AssertionError(f"{error} (states so far: {seen['states']})") from None


# ------------------------------------------------------------------------------------------
# The receiver
# ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Delivery:
    method: str
    path: str
    target: str
    url: str
    headers: Dict[str, str]  # lower-cased names
    body: str
    raw_body: bytes
    signature: Optional[str]
    verify_error: Optional[str]
    at: float = 0.0  # time.monotonic() when the request arrived
    done_at: Optional[float] = None  # time.monotonic() once the reply was written


class Rx:
    """A recording, signature-verifying HTTP endpoint."""

    def __init__(self, current: str, next_: str) -> None:
        self.keys = {"current": current, "next": next_}
        self.requests: List[Delivery] = []
        self._scripts: Dict[str, List[Reply]] = {}
        self._cond = threading.Condition()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = raw.decode("utf-8", errors="replace")
                called = rx.url + self.path
                path = urllib.parse.urlsplit(self.path).path
                signature = self.headers.get("Upstash-Signature")
                verify_error = None
                if not signature:
                    verify_error = "missing Upstash-Signature header"
                else:
                    try:
                        Receiver(rx.keys["current"], rx.keys["next"]).verify(
                            signature=signature, body=body, url=called
                        )
                    except Exception as error:  # noqa: BLE001 - recorded, asserted by the tests
                        verify_error = f"{type(error).__name__}: {error}"
                with rx._cond:
                    queue = rx._scripts.get(path)
                    reply = queue.pop(0) if queue else Reply()
                    delivery = Delivery(
                        method=self.command,
                        path=path,
                        target=self.path,
                        url=called,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        raw_body=raw,
                        signature=signature,
                        verify_error=verify_error,
                        at=time.monotonic(),
                    )
                    rx.requests.append(delivery)
                    rx._cond.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                delivery.done_at = time.monotonic()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def script(self, path: str, *replies: Reply) -> None:
        with self._cond:
            self._scripts.setdefault(path, []).extend(replies)

    def on(self, path: str) -> List[Delivery]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, n: int = 1, timeout: float = WAIT_TIMEOUT_S) -> List[Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r.path == path]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {n} request(s) to {path}; got {len(got)}")
                self._cond.wait(left)

    def assert_quiet(self, path: str, n: int, seconds: float = 0.3) -> None:
        time.sleep(seconds)
        got = len(self.on(path))
        assert got == n, f"expected {n} request(s) to {path}, got {got}"

    def assert_all_verified(self) -> None:
        bad = [r for r in self.requests if r.verify_error is not None]
        assert not bad, "signature verification failed for: " + "; ".join(
            f"{r.method} {r.target}: {r.verify_error}" for r in bad
        )

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def rx():
    receiver = Rx(USERS["default"]["current"], USERS["default"]["next"])
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def rx2():
    """A second receiver (another port), for fan-out to two endpoints."""
    receiver = Rx(USERS["default"]["current"], USERS["default"]["next"])
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(autouse=True)
def _every_delivery_verified(request):
    """After each test, every delivery the module's receivers got must have a valid signature."""
    yield
    for name in ("rx", "rx2"):
        if name in request.fixturenames:
            request.getfixturevalue(name).assert_all_verified()


def make_rx(user: str) -> Rx:
    return Rx(USERS[user]["current"], USERS[user]["next"])


def unique_path(name: str) -> str:
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
    return f"/{name}-{suffix}"


def unique(tag: str) -> str:
    """A unique name for queues, URL groups, schedules, flow-control keys, dedup ids."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
    return f"{tag}-{suffix}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def unb64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


def header_values(headers: Optional[Dict[str, List[str]]], name: str) -> Optional[List[str]]:
    """Values of a header map entry, looked up case-insensitively."""
    for key, values in (headers or {}).items():
        if key.lower() == name.lower():
            return values
    return None


def is_status(error: BaseException, status: int) -> bool:
    return f"Request failed with status: {status}," in str(error)


@pytest.fixture(scope="module")
def wf(server):
    """A workflow app (``workflow_app.WorkflowApp``) of the default user on the module's server."""
    from workflow_app import WorkflowApp

    app = WorkflowApp(server.url, USERS["default"])
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(autouse=True)
def _workflow_sdk_accepted_everything(request):
    """After a test that used ``wf``: the SDK rejected or crashed on nothing."""
    yield
    if "wf" in request.fixturenames:
        request.getfixturevalue("wf").assert_no_sdk_errors()
