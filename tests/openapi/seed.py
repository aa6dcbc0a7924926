"""Gives the schemathesis run something to read: three people hired and one departed over
signed native deliveries (the PyPI `standardwebhooks` package signs them), then prints the
ids schemathesis should use for `{id}` path parameters, as shell assignments.

Usage: seed.py <base url> <webhook secret> <ops token>
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone

from standardwebhooks import Webhook


def post(base: str, secret: str, body: dict) -> dict:
    raw = json.dumps(body, separators=(",", ":"))
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.now(tz=timezone.utc)
    request = urllib.request.Request(
        f"{base}/webhooks/hr",
        data=raw.encode(),
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, raw),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status
        return json.load(response)


def get(base: str, token: str, path: str) -> dict:
    request = urllib.request.Request(f"{base}{path}", headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main() -> None:
    base, secret, token = sys.argv[1:4]
    for n, dept in enumerate(["Engineering", "Sales", "Engineering"], start=1):
        post(
            base,
            secret,
            {
                "type": "person.hired",
                "occurred_at": f"2026-11-2{n}T10:00:00Z",
                "person": {"id": f"ST{n}", "email": f"st{n}@acme.test", "name": f"Person {n}", "department": dept},
            },
        )
    event = post(
        base,
        secret,
        {"type": "person.departed", "occurred_at": "2026-11-28T10:00:00Z", "person": {"id": "ST3"}},
    )
    # Wait for the worker to apply them (and plan, in dry run: no Admin API is configured).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not get(base, token, "/api/v1/events?status=received")["data"]:
            break
        time.sleep(0.2)
    person = get(base, token, "/api/v1/people?limit=1")["data"][0]["id"]
    actions = get(base, token, "/api/v1/actions?limit=1")["data"]
    action = actions[0]["id"] if actions else str(uuid.uuid4())
    print(f"KC_EVENT_ID={event['event_id']}")
    print(f"KC_PERSON_ID={person}")
    print(f"KC_ACTION_ID={action}")


if __name__ == "__main__":
    main()
