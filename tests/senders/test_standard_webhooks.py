"""Native deliveries signed by the PyPI `standardwebhooks` package."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from standardwebhooks import Webhook

from conftest import NATIVE_SECRET, OLD_NATIVE_SECRET, Keycard


def hire(person: str) -> bytes:
    return json.dumps(
        {
            "type": "person.hired",
            "occurred_at": "2026-11-28T10:00:00Z",
            "person": {"id": person, "email": f"{person.lower()}@acme.test", "department": "Engineering"},
        },
        separators=(",", ":"),
    ).encode()


def signed(body: bytes, secret: str = NATIVE_SECRET, skew: timedelta = timedelta(0), msg_id: str | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = datetime.now(tz=timezone.utc) + skew
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def test_a_signed_delivery_is_accepted_once(keycard: Keycard) -> None:
    body = hire("SW1")
    headers = signed(body)
    status, answer = keycard.post("hr", body, headers)
    assert status == 202, answer
    assert answer["duplicate"] is False
    status, again = keycard.post("hr", body, headers)
    assert status == 202
    assert again["duplicate"] is True
    assert again["event_id"] == answer["event_id"]


def test_the_previous_secret_verifies_during_rotation(keycard: Keycard) -> None:
    body = hire("SW2")
    status, answer = keycard.post("hr", body, signed(body, OLD_NATIVE_SECRET))
    assert status == 202, answer


def test_one_changed_byte_is_refused(keycard: Keycard) -> None:
    body = hire("SW3")
    headers = signed(body)
    status, problem = keycard.post("hr", body.replace(b"Engineering", b"Engineerinh"), headers)
    assert status == 401
    assert problem["code"] == "signature_mismatch"


def test_timestamps_outside_five_minutes_are_refused(keycard: Keycard) -> None:
    body = hire("SW4")
    status, problem = keycard.post("hr", body, signed(body, skew=timedelta(seconds=-330)))
    assert (status, problem["code"]) == (401, "timestamp_too_old")
    status, problem = keycard.post("hr", body, signed(body, skew=timedelta(seconds=330)))
    assert (status, problem["code"]) == (401, "timestamp_in_future")


def test_two_signatures_where_only_the_second_is_valid(keycard: Keycard) -> None:
    body = hire("SW5")
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.now(tz=timezone.utc)
    wrong = Webhook("whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IHNlY3JldA==").sign(msg_id, at, body.decode())
    right = Webhook(NATIVE_SECRET).sign(msg_id, at, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": f"{wrong} {right}",
    }
    status, answer = keycard.post("hr", body, headers)
    assert status == 202, answer


def test_a_wrong_secret_or_missing_header_is_refused(keycard: Keycard) -> None:
    body = hire("SW6")
    status, problem = keycard.post("hr", body, signed(body, "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IHNlY3JldA=="))
    assert (status, problem["code"]) == (401, "signature_mismatch")
    headers = signed(body)
    del headers["webhook-signature"]
    status, problem = keycard.post("hr", body, headers)
    assert (status, problem["code"]) == (401, "missing_header")
    assert "whsec_" not in json.dumps(problem)
