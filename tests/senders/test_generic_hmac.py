"""generic-hmac deliveries signed by the npm `stripe` and `@octokit/webhooks-methods` packages."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

from conftest import GITHUB_SECRET, STRIPE_SECRET, Keycard, node_sign


def github_body(person: str, action: str = "employee.hired") -> bytes:
    return json.dumps(
        {"action": action, "employee": {"id": person, "email": f"{person.lower()}@acme.test", "department": "Sales"}}
    ).encode()


def stripe_body(person: str, kind: str = "employee.terminated") -> bytes:
    return json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "created": int(time.time()),
         "data": {"object": {"id": person, "email": f"{person.lower()}@acme.test"}}}
    ).encode()


def test_github_style_signed_by_octokit(keycard: Keycard) -> None:
    body = github_body("GH1")
    [signature] = node_sign([{"scheme": "github", "payload": body.decode(), "secret": GITHUB_SECRET}])
    assert signature.startswith("sha256=")
    delivery = str(uuid.uuid4())
    headers = {"x-hub-signature-256": signature, "x-github-delivery": delivery}
    status, answer = keycard.post("github", body, headers)
    assert status == 202, answer
    assert answer["events"][0]["kind"] == "hired"
    status, again = keycard.post("github", body, headers)
    assert (status, again["duplicate"]) == (202, True)
    # The unsigned delivery header is not the dedupe key (a replay under a fresh one is a
    # duplicate): with no event id mapped, the signed body's hash is.
    status, replay = keycard.post("github", body, {**headers, "x-github-delivery": str(uuid.uuid4())})
    assert (status, replay["duplicate"]) == (202, True)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    [row] = [e for e in keycard.events(source="github") if e["dedupe_key"] == digest]
    assert row["person_source_id"] == "GH1"

    # Signed with another secret, with the legacy sha1= prefix, or over another body.
    [other] = node_sign([{"scheme": "github", "payload": body.decode(), "secret": "not the secret"}])
    status, problem = keycard.post("github", body, {"x-hub-signature-256": other})
    assert (status, problem["code"]) == (401, "signature_mismatch")
    status, problem = keycard.post("github", body, {"x-hub-signature-256": signature.replace("sha256=", "sha1=")})
    assert (status, problem["code"]) == (401, "malformed_signature")
    status, problem = keycard.post("github", github_body("GH2"), {"x-hub-signature-256": signature})
    assert (status, problem["code"]) == (401, "signature_mismatch")


def test_unmapped_github_style_types_are_acknowledged(keycard: Keycard) -> None:
    body = github_body("GH3", action="employee.birthday")
    [signature] = node_sign([{"scheme": "github", "payload": body.decode(), "secret": GITHUB_SECRET}])
    status, answer = keycard.post("github", body, {"x-hub-signature-256": signature})
    assert status == 202, answer
    assert answer["events"][0]["status"] == "ignored"


def test_stripe_style_signed_by_stripe(keycard: Keycard) -> None:
    now = int(time.time())
    body = stripe_body("ST1")
    good, stale, future, wrong = node_sign(
        [
            {"scheme": "stripe", "payload": body.decode(), "secret": STRIPE_SECRET, "timestamp": now},
            {"scheme": "stripe", "payload": body.decode(), "secret": STRIPE_SECRET, "timestamp": now - 400},
            {"scheme": "stripe", "payload": body.decode(), "secret": STRIPE_SECRET, "timestamp": now + 400},
            {"scheme": "stripe", "payload": body.decode(), "secret": "whsec_wrong", "timestamp": now},
        ]
    )
    assert good.startswith(f"t={now},v1=")
    status, answer = keycard.post("stripe", body, {"stripe-signature": good})
    assert status == 202, answer
    assert answer["events"][0]["kind"] == "departed"
    status, again = keycard.post("stripe", body, {"stripe-signature": good})
    assert (status, again["duplicate"]) == (202, True)
    for header, code in [
        (stale, "timestamp_too_old"),
        (future, "timestamp_in_future"),
        (wrong, "signature_mismatch"),
        (good.split(",")[1], "malformed_signature"),
    ]:
        status, problem = keycard.post("stripe", body, {"stripe-signature": header})
        assert (status, problem["code"]) == (401, code), header
    status, problem = keycard.post("stripe", stripe_body("ST2"), {"stripe-signature": good})
    assert (status, problem["code"]) == (401, "signature_mismatch")
