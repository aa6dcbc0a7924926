"""The `/_sim/` control API must reject nonsense instead of taking the simulator down."""

from __future__ import annotations

import anthropic
import pytest

from conftest import Sim


def test_fault_with_zero_count_is_rejected_and_the_server_survives(sim: Sim, client: anthropic.Anthropic) -> None:
    r = sim.http.post("/_sim/faults", json={"route": "*", "status": 500, "count": 0})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert sim.http.get("/_sim/faults").json() == {"faults": []}
    assert client.organization.retrieve().type == "organization"


def test_fault_counts_are_exact(sim: Sim, client: anthropic.Anthropic) -> None:
    sim.fault("organization.me", 500, count=3)
    for _ in range(3):
        with pytest.raises(anthropic.InternalServerError):
            client.organization.retrieve()
    assert client.organization.retrieve().type == "organization"
    assert sim.http.get("/_sim/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "body",
    [
        {"advance_seconds": 9_223_372_036_854_775_807},
        {"advance_seconds": -9_223_372_036_854_775_807},
        {"advance_seconds": 200 * 366 * 86400},
        {"set": "9999-12-31T23:59:59Z"},
        {"set": "1900-01-01T00:00:00Z"},
        {"advance_seconds": 1, "set": "2030-01-01T00:00:00Z"},
        {},
    ],
)
def test_clock_rejects_out_of_range_moves(sim: Sim, client: anthropic.Anthropic, body: dict) -> None:
    before = sim.http.get("/_sim/clock").json()["now"]
    r = sim.http.post("/_sim/clock", json=body)
    assert r.status_code == 400, r.text
    after = sim.http.get("/_sim/clock").json()["now"]
    assert after[:16] == before[:16]  # not moved (same minute)
    # Still serving, invites still computable.
    assert client.organization.invites.create(email="clock@acme.test", role="user").status == "pending"


def test_clock_set_and_advance(sim: Sim, client: anthropic.Anthropic) -> None:
    r = sim.http.post("/_sim/clock", json={"set": "2031-05-01T12:00:00Z"})
    assert r.status_code == 200 and r.json()["now"].startswith("2031-05-01T12:00:00")
    invite = client.organization.invites.create(email="future@acme.test", role="user")
    assert invite.invited_at.year == 2031
    assert sim.advance_clock(21 * 86400).startswith("2031-05-22T12:00:0")
    assert client.organization.invites.retrieve(invite.id).status == "expired"
