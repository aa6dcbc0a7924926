"""Transport: what the SDK puts on the wire, and the headers/version handling around it."""

from __future__ import annotations

import re

import anthropic
import pytest

from conftest import ADMIN_KEY, GA_VERSION, OLD_VERSION, ORG_ID, Sim


def test_sdk_wire_format(sim: Sim, client: anthropic.Anthropic) -> None:
    """Pin the SDK facts the simulator relies on (bearer auth, version, no ?beta=true)."""
    client.organization.users.list(roles=["admin", "developer"])
    client.beta.organization.users.list()
    ga, beta = sim.sent[-2], sim.sent[-1]
    for request in (ga, beta):
        assert request.headers["authorization"] == f"Bearer {ADMIN_KEY}"
        assert "x-api-key" not in request.headers
        assert request.headers["anthropic-version"] == GA_VERSION
    # Array params in brackets form; the beta namespace adds no query parameter.
    assert ga.url.query == b"roles%5B%5D=admin&roles%5B%5D=developer"
    assert beta.url.query == b""


def test_organization_me(org) -> None:
    me = org.retrieve()
    assert me.id == ORG_ID
    assert me.name == "Acme Corp"
    assert me.type == "organization"


def test_every_response_carries_request_and_org_id(sim: Sim, client: anthropic.Anthropic) -> None:
    raw = client.organization.with_raw_response.retrieve()
    first = raw.headers["request-id"]
    assert re.fullmatch(r"req_01[1-9A-HJ-NP-Za-km-z]{22}", first)
    assert raw.headers["anthropic-organization-id"] == ORG_ID
    assert "anthropic-workspace-id" not in raw.headers
    second = client.organization.with_raw_response.retrieve().headers["request-id"]
    assert second != first
    # The call log records the same id the client saw.
    assert [c["request_id"] for c in sim.calls()][-2:] == [first, second]


def test_unknown_query_params_are_ignored(sim: Sim, client: anthropic.Anthropic) -> None:
    """Older SDKs sent `?beta=true`; the simulator must ignore it (and any other stray param)."""
    page = client.organization.users.list(extra_query={"beta": "true", "whatever": "1"})
    assert len(page.data) == 5
    assert sim.calls()[-1]["query"] == "beta=true&whatever=1"


def test_repeated_array_form_is_accepted(shared_sim: Sim) -> None:
    r = shared_sim.raw("GET", "/v1/organizations/users?roles=admin&roles=billing")
    assert r.status_code == 200
    assert sorted(u["role"] for u in r.json()["data"]) == ["admin", "billing"]


def test_old_api_version_still_accepted_with_deprecated_key_field(sim: Sim) -> None:
    old = sim.client(default_headers={"anthropic-version": OLD_VERSION})
    new = sim.client()
    eng = sim.workspace_id("Engineering")
    key_id = sim.key_id("eng-ci")
    old_key = old.organization.api_keys.retrieve(key_id)
    assert sim.sent[-1].headers["anthropic-version"] == OLD_VERSION
    # Under 2023-06-01 the deprecated top-level workspace_id is present ...
    assert old_key.model_extra == {"workspace_id": eng}
    # ... and under 2026-10-21 it is gone.
    new_key = new.organization.api_keys.retrieve(key_id)
    assert new_key.model_extra == {}
    assert new_key.scope.workspace_id == eng
    # Default-workspace keys report null in the deprecated field but the real id in scope.
    default_key = old.organization.api_keys.retrieve(sim.key_id("default-ws"))
    assert default_key.model_extra == {"workspace_id": None}
    assert default_key.scope.type == "workspace"
    assert default_key.scope.workspace_id == sim.default_workspace_id


def test_missing_version_header(shared_sim: Sim) -> None:
    r = shared_sim.raw("GET", "/v1/organizations/me", version=None)
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}
    assert body["request_id"] == r.headers["request-id"]


@pytest.mark.parametrize("version", ["2024-01-01", "latest", ""])
def test_unknown_version_rejected_by_sdk_client(shared_sim: Sim, version: str) -> None:
    c = shared_sim.client(default_headers={"anthropic-version": version})
    with pytest.raises(anthropic.BadRequestError) as info:
        c.organization.retrieve()
    assert info.value.type == "invalid_request_error"
    assert "anthropic-version" in (info.value.api_message or "")


def test_unknown_path_is_404_envelope(shared_sim: Sim, shared_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        shared_client.get("/v1/organizations/nonexistent", cast_to=object)
    assert info.value.type == "not_found_error"
    assert info.value.request_id and info.value.request_id.startswith("req_")
