"""Alerts out, checked by the PyPI `standardwebhooks` package: Keycard's outbound
notifications verify as Standard Webhooks with the target's secret, and the Slack format is
an incoming-webhook message. Receivers are loopback HTTP servers in this process."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from standardwebhooks import Webhook

from conftest import CONFIG, KEYCARD_BIN, NATIVE_SECRET, Keycard

ALERT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """Records every POST; answers 200."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.got if p == path]

    def wait_for(self, path: str, n: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.at(path)) >= n:
                return self.at(path)
            time.sleep(0.1)
        pytest.fail(f"{path} got {len(self.at(path))} messages, expected {n}")


ALERTS = """
[safety]
protected_emails = ["ceo@acme.test"]

[notify]
console_url = "https://keycard.acme.test"
poll_ms = 100

[[notify.targets]]
name = "siem"
format = "standard-webhooks"
url = "{receiver}/siem"
secret_env = "ALERTS_SECRET"

[[notify.targets]]
name = "slack"
format = "slack"
url_env = "ALERTS_SLACK_URL"
"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[tuple[Keycard, Path]]:
    workdir = tmp_path_factory.mktemp("alerts")
    config = CONFIG + ALERTS.replace("{receiver}", receiver.url)
    server = Keycard(
        workdir,
        config=config,
        extra_env={"ALERTS_SECRET": ALERT_SECRET, "ALERTS_SLACK_URL": f"{receiver.url}/slack"},
    )
    try:
        yield server, workdir / "keycard.toml"
    finally:
        server.stop()


def verified(headers: dict[str, str], body: bytes) -> dict:
    # Raises WebhookVerificationError on a bad signature, id or timestamp.
    return Webhook(ALERT_SECRET).verify(body, headers)


def test_a_protected_hire_alerts_as_a_verified_standard_webhook_and_in_slack(alerting: tuple[Keycard, Path], receiver: Receiver) -> None:
    keycard, _ = alerting
    body = json.dumps(
        {
            "type": "person.hired",
            "occurred_at": "2026-11-28T10:00:00Z",
            "person": {"id": "CEO1", "email": "ceo@acme.test", "department": "Board"},
        }
    ).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.now(tz=timezone.utc)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(NATIVE_SECRET).sign(msg_id, at, body.decode()),
    }
    status, answer = keycard.post("hr", body, headers)
    assert status == 202, answer

    (headers, body), = receiver.wait_for("/siem", 1)
    message = verified(headers, body)
    assert message["type"] == "manual_action.needed"
    assert message["data"]["person"]["email"] == "ceo@acme.test"
    assert message["data"]["action"]["status"] == "needs_manual_action"
    assert message["data"]["console_url"].startswith("https://keycard.acme.test/console/people/")
    assert headers["webhook-id"] == f"msg_{message['data']['notification_id'].replace('-', '')}"

    (_, slack), = receiver.wait_for("/slack", 1)
    slack = json.loads(slack)
    assert "manual_action.needed" in slack["text"] and "ceo@acme.test" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"

    # A forged or altered message does not verify.
    with pytest.raises(Exception):
        verified(headers, body.replace(b"ceo@acme.test", b"cfo@acme.test"))


def test_notify_test_reaches_each_target(alerting: tuple[Keycard, Path], receiver: Receiver) -> None:
    _, config = alerting
    before = len(receiver.at("/siem"))
    env = {
        **os.environ,
        "ALERTS_SECRET": ALERT_SECRET,
        "ALERTS_SLACK_URL": f"{receiver.url}/slack",
        # The config is validated whole (every source's secret) before a test alert goes.
        "SENDERS_OPS_TOKEN": "senders-ops-token",
        "SENDERS_NATIVE_SECRET": NATIVE_SECRET,
        "SENDERS_OLD_NATIVE_SECRET": NATIVE_SECRET,
        "SENDERS_GITHUB_SECRET": "It's a Secret to Everybody",
        "SENDERS_STRIPE_SECRET": "whsec_test_stripe_style_secret_0001",
    }
    out = subprocess.run(
        [KEYCARD_BIN, "notify-test", "--config", str(config), "--target", "siem"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "siem: delivered (200)" in out.stdout
    headers, body = receiver.at("/siem")[before]
    assert verified(headers, body)["type"] == "keycard.test"
