"""Conformance suite: the official `anthropic` Python SDK (2.14.0) against `keycard admin-sim`.

Every test gets a fresh simulator process on a free port, started from a seed file written to
the test's tmp dir, and talks to it through a real SDK client. The `/_sim/` control API (no
credentials) plays the parts the real service leaves to people: accepting invites, creating
keys, moving the clock, injecting faults.

Wire facts of SDK 2.14.0 the simulator has to live with (asserted in test_transport.py):
* the API key goes out as `Authorization: Bearer <key>`, never as `x-api-key`;
* every call sends `anthropic-version: 2026-10-21`;
* `client.beta.organization.*` does NOT add `?beta=true` on the wire (the `beta` qualifier only
  labels telemetry spans), so beta and non-beta calls differ only in the response model class.

The SDK's own HTTP client is `httpx2` (anthropic 2.x depends on it instead of `httpx`), so the
control helper and the raw-request helper use `httpx2` too: no extra dependency.
"""

from __future__ import annotations

import copy
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import anthropic
import httpx2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYCARD_BIN = os.environ.get("KEYCARD_BIN") or str(REPO_ROOT / "target" / "debug" / "keycard")

ADMIN_KEY = "sk-ant-admin01-sdk-conformance-0000"
OTHER_ADMIN_LOOKING_KEY = "sk-ant-admin01-not-a-registered-key"
NON_ADMIN_KEY = "sk-ant-api03-plain-workspace-key"
ORG_ID = "7c1f3b1e-5d2a-4c1b-9a43-0d6f2b8e9a10"
GA_VERSION = "2026-10-21"
OLD_VERSION = "2023-06-01"

# The SDK reads these; a developer's environment must not leak into the suite.
for _name in list(os.environ):
    if _name.startswith("ANTHROPIC_"):
        del os.environ[_name]


def default_seed() -> dict[str, Any]:
    """A small Console organization most tests start from."""
    return {
        "organization": {"id": ORG_ID, "name": "Acme Corp", "kind": "console"},
        "admin_keys": [ADMIN_KEY],
        "users": [
            {"email": "root@acme.test", "name": "Root Admin", "role": "admin"},
            {"email": "alice@acme.test", "name": "Alice", "role": "developer"},
            {"email": "bob@acme.test", "name": "Bob", "role": "user"},
            {"email": "carol@acme.test", "name": "Carol", "role": "billing"},
            {"email": "dave@acme.test", "name": "Dave", "role": "claude_code_user"},
        ],
        "workspaces": [
            {
                "name": "Engineering",
                "members": [
                    {"email": "alice@acme.test", "workspace_role": "workspace_developer"},
                    {"email": "bob@acme.test", "workspace_role": "workspace_user"},
                ],
            },
            {"name": "Research", "members": []},
        ],
        "api_keys": [
            {"name": "eng-ci", "workspace": "Engineering", "created_by": "alice@acme.test"},
            {
                "name": "eng-old",
                "workspace": "Engineering",
                "created_by": "bob@acme.test",
                "status": "inactive",
            },
            {"name": "default-ws", "created_by": "alice@acme.test"},
            {"name": "research", "workspace": "Research", "created_by": "root@acme.test"},
        ],
        "invites": [{"email": "newbie@acme.test", "role": "developer"}],
    }


class SimProcess:
    """One `keycard admin-sim` process."""

    def __init__(self, seed: dict[str, Any], workdir: Path) -> None:
        if not Path(KEYCARD_BIN).is_file():
            pytest.fail(
                f"keycard binary not found at {KEYCARD_BIN}; run `cargo build --bin keycard` "
                "or set KEYCARD_BIN"
            )
        seed_path = workdir / "seed.json"
        seed_path.write_text(json.dumps(seed))
        self.stderr_path = workdir / "admin-sim.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [KEYCARD_BIN, "admin-sim", "--listen", "127.0.0.1:0", "--seed", str(seed_path)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        self.base_url = self._read_address()

    def _read_address(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 15
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(remaining, 0))
            if not ready:
                self.stop()
                pytest.fail(f"admin-sim printed no address in time; stderr:\n{self._stderr_text()}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                self.stop()
                pytest.fail(f"admin-sim exited before printing its address; stderr:\n{self._stderr_text()}")
            line += chunk
        text = line.decode().strip()
        prefix = "keycard admin-sim listening on "
        assert text.startswith(prefix), f"unexpected first stdout line: {text!r}"
        return text[len(prefix):]

    def _stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


class Sim:
    """Test-side handle: the `/_sim/` control API, raw Admin API calls and SDK clients."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Plain HTTP on loopback: `verify=False` only skips building a TLS context, which
        # costs ~60 ms per client and would dominate the suite's run time.
        self.http = httpx2.Client(base_url=base_url, timeout=10.0, trust_env=False, verify=False)
        # Every request an SDK client made, as sent (method, url, headers).
        self.sent: list[httpx2.Request] = []
        self._clients: list[anthropic.Anthropic] = []

    # ------------------------------------------------------------------ SDK clients

    def client(self, api_key: str | None = ADMIN_KEY, **kwargs: Any) -> anthropic.Anthropic:
        def record(request: httpx2.Request) -> None:
            self.sent.append(request)

        http_client = anthropic.DefaultHttpxClient(
            event_hooks={"request": [record]}, trust_env=False, verify=False
        )
        kwargs.setdefault("max_retries", 0)
        # Validate every response against the SDK's own models: a missing or mistyped field is
        # a test failure instead of a silently half-built object.
        kwargs.setdefault("_strict_response_validation", True)
        client = anthropic.Anthropic(api_key=api_key, base_url=self.base_url, http_client=http_client, **kwargs)
        self._clients.append(client)
        return client

    # ------------------------------------------------------------------ raw Admin API

    def raw(
        self,
        method: str,
        path: str,
        *,
        key: str | None = ADMIN_KEY,
        version: str | None = GA_VERSION,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx2.Response:
        """An Admin API request without the SDK (malformed bodies, odd headers)."""
        h: dict[str, str] = {}
        if key is not None:
            h["x-api-key"] = key
        if version is not None:
            h["anthropic-version"] = version
        h.update(headers or {})
        return self.http.request(method, path, headers=h, **kwargs)

    # ------------------------------------------------------------------ control API

    def _ok(self, response: httpx2.Response) -> Any:
        assert response.status_code == 200, f"{response.request.url}: {response.status_code} {response.text}"
        return response.json()

    def state(self) -> dict[str, Any]:
        return self._ok(self.http.get("/_sim/state"))

    @property
    def default_workspace_id(self) -> str:
        return self.state()["default_workspace_id"]

    def user_id(self, email: str) -> str:
        for user in self.state()["users"]:
            if user["email"] == email:
                return user["id"]
        raise KeyError(email)

    def workspace_id(self, name: str) -> str:
        for ws in self.state()["workspaces"]:
            if ws["name"] == name:
                return ws["id"]
        raise KeyError(name)

    def key_id(self, name: str) -> str:
        for key in self.state()["api_keys"]:
            if key["name"] == name:
                return key["id"]
        raise KeyError(name)

    def accept_invite(self, invite_id: str, name: str | None = None) -> dict[str, Any]:
        body = {} if name is None else {"name": name}
        return self._ok(self.http.post(f"/_sim/invites/{invite_id}/accept", json=body))

    def add_user(self, email: str, role: str, name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email, "role": role}
        if name is not None:
            body["name"] = name
        return self._ok(self.http.post("/_sim/users", json=body))

    def add_api_key(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._ok(self.http.post("/_sim/api_keys", json={"name": name, **fields}))

    def advance_clock(self, seconds: int) -> str:
        return self._ok(self.http.post("/_sim/clock", json={"advance_seconds": seconds}))["now"]

    def fault(self, route: str, status: int, count: int = 1, **extra: Any) -> None:
        self._ok(self.http.post("/_sim/faults", json={"route": route, "status": status, "count": count, **extra}))

    def calls(self) -> list[dict[str, Any]]:
        return self._ok(self.http.get("/_sim/calls"))["calls"]

    def clear_calls(self) -> None:
        self._ok(self.http.delete("/_sim/calls"))

    def settings(self, **patch: Any) -> dict[str, Any]:
        if patch:
            return self._ok(self.http.post("/_sim/settings", json=patch))
        return self._ok(self.http.get("/_sim/settings"))

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.http.close()


@pytest.fixture
def seed() -> dict[str, Any]:
    """The seed for this test's simulator; override the fixture in a module to change it."""
    return copy.deepcopy(default_seed())


@pytest.fixture
def sim(seed: dict[str, Any], tmp_path: Path) -> Iterator[Sim]:
    process = SimProcess(seed, tmp_path)
    handle = Sim(process.base_url)
    try:
        yield handle
    finally:
        handle.close()
        process.stop()


@pytest.fixture
def client(sim: Sim) -> anthropic.Anthropic:
    """An SDK client for `sim` (closed with it)."""
    return sim.client()


@pytest.fixture(params=["ga", "beta"])
def org(request: pytest.FixtureRequest, client: anthropic.Anthropic) -> Any:
    """`client.organization` (2026-10-21 GA surface) or `client.beta.organization`."""
    return client.organization if request.param == "ga" else client.beta.organization


# ---------------------------------------------------------------------- shared simulator
#
# Reads and rejected requests don't need a fresh process each: they share one simulator per
# module (default seed, rate limit out of the way), and every such test must leave the
# organization exactly as it found it -- checked after each test, so a simulator that
# "rejects" a request but changes state anyway fails here too.

STATE_PARTS = ("organization", "users", "invites", "workspaces", "workspace_members", "api_keys")


@pytest.fixture(scope="module")
def _shared_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    seed = default_seed()
    seed["settings"] = {"rate_limit_per_minute": 1_000_000}
    process = SimProcess(seed, tmp_path_factory.mktemp("shared-sim"))
    handle = Sim(process.base_url)
    try:
        yield handle
    finally:
        handle.close()
        process.stop()


@pytest.fixture(scope="module")
def shared_client(_shared_process: Sim) -> anthropic.Anthropic:
    return _shared_process.client()


@pytest.fixture
def shared_sim(_shared_process: Sim) -> Iterator[Sim]:
    """The module's shared simulator; the test must not change the organization."""
    before = {k: v for k, v in _shared_process.state().items() if k in STATE_PARTS}
    yield _shared_process
    after = {k: v for k, v in _shared_process.state().items() if k in STATE_PARTS}
    for part in STATE_PARTS:
        assert after[part] == before[part], f"a read or rejected request changed {part}"


@pytest.fixture(params=["ga", "beta"])
def shared_org(request: pytest.FixtureRequest, shared_sim: Sim, shared_client: anthropic.Anthropic) -> Any:
    """`organization` / `beta.organization` on the module's shared simulator."""
    return shared_client.organization if request.param == "ga" else shared_client.beta.organization
