"""Independent signers against a running `keycard serve`.

The deliveries in this suite are signed by the senders' own libraries, not by Keycard's code:
Standard Webhooks by the PyPI `standardwebhooks` package, Stripe-style headers by the npm
`stripe` package and GitHub-style ones by `@octokit/webhooks-methods` (both through
`sign.mjs`). One `keycard serve` process serves the whole session, on a scratch PostgreSQL
database created for it and dropped afterwards; no Admin API is configured (dry run).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
KEYCARD_BIN = os.environ.get("KEYCARD_BIN") or str(REPO_ROOT / "target" / "debug" / "keycard")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

NATIVE_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
OLD_NATIVE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITHUB_SECRET = "It's a Secret to Everybody"
STRIPE_SECRET = "whsec_test_stripe_style_secret_0001"

CONFIG = """
[server]
listen = "127.0.0.1:0"
ops_token_env = "SENDERS_OPS_TOKEN"

[journal]
url = "{url}"
max_connections = 4

[reconciler]
workers = 1

[[sources]]
name = "hr"
kind = "keycard"
secret_env = "SENDERS_NATIVE_SECRET"
previous_secret_env = "SENDERS_OLD_NATIVE_SECRET"

[[sources]]
name = "github"
kind = "generic-hmac"
secret_env = "SENDERS_GITHUB_SECRET"
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"

[sources.mapping]
event_type = "/action"
person_id = "/employee/id"
email = "/employee/email"
department = "/employee/department"

[sources.mapping.types]
"employee.hired" = "hired"
"employee.left" = "departed"

[[sources]]
name = "stripe"
kind = "generic-hmac"
style = "stripe"
secret_env = "SENDERS_STRIPE_SECRET"

[sources.mapping]
event_type = "/type"
event_id = "/id"
person_id = "/data/object/id"
email = "/data/object/email"

[sources.mapping.types]
"employee.hired" = "hired"
"employee.terminated" = "departed"

[default]
org_role = "user"
"""


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", DATABASE_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


class Keycard:
    """One `keycard serve` process on a scratch database."""

    def __init__(self, workdir: Path, config: str = CONFIG, extra_env: dict[str, str] | None = None) -> None:
        if not Path(KEYCARD_BIN).is_file():
            pytest.fail(f"keycard binary not found at {KEYCARD_BIN}; run `cargo build --bin keycard` or set KEYCARD_BIN")
        self.database = f"keycard_senders_{uuid.uuid4().hex[:12]}"
        _psql(f'CREATE DATABASE "{self.database}"')
        base, _, _ = DATABASE_URL.rpartition("/")
        config_path = workdir / "keycard.toml"
        config_path.write_text(config.replace("{url}", f"{base}/{self.database}"))
        self.stderr_path = workdir / "keycard.stderr"
        self._stderr = self.stderr_path.open("wb")
        env = {
            **os.environ,
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
            "SENDERS_OPS_TOKEN": "senders-ops-token",
            "SENDERS_NATIVE_SECRET": NATIVE_SECRET,
            "SENDERS_OLD_NATIVE_SECRET": OLD_NATIVE_SECRET,
            "SENDERS_GITHUB_SECRET": GITHUB_SECRET,
            "SENDERS_STRIPE_SECRET": STRIPE_SECRET,
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [KEYCARD_BIN, "serve", "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.base_url = self._read_address()

    def _read_address(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(remaining, 0))
            if not ready:
                self.stop()
                pytest.fail(f"keycard printed no address in time; stderr:\n{self.stderr()}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                self.stop()
                pytest.fail(f"keycard exited before listening; stderr:\n{self.stderr()}")
            line += chunk
        text = line.decode().strip()
        prefix = "keycard listening on "
        if not text.startswith(prefix):
            self.stop()
            pytest.fail(f"unexpected first line {text!r}")
        return text[len(prefix) :]

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.base_url}/webhooks/{source}",
            data=body,
            method="POST",
            headers={"content-type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def events(self, **query: str) -> list[dict]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/events?{qs}",
            headers={"authorization": "Bearer senders-ops-token"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        try:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass


@pytest.fixture(scope="session")
def keycard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycard]:
    server = Keycard(tmp_path_factory.mktemp("keycard"))
    try:
        yield server
    finally:
        server.stop()


def node_sign(requests: list[dict]) -> list[str]:
    """Signs with the npm packages (see sign.mjs)."""
    if not (HERE / "node_modules").is_dir():
        pytest.fail("tests/senders/node_modules is missing: run `npm ci` in tests/senders")
    result = subprocess.run(
        ["node", str(HERE / "sign.mjs")],
        input=json.dumps(requests).encode(),
        capture_output=True,
        check=False,
        cwd=HERE,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(f"sign.mjs failed: {result.stderr.decode(errors='replace')}")
    return json.loads(result.stdout)
