"""API keys: seeded fixtures, list filters, get, rename, status changes."""

from __future__ import annotations

import anthropic
import pytest

from conftest import Sim

DAY = 24 * 60 * 60


def test_list_shape_and_order(shared_org, shared_sim: Sim) -> None:
    page = shared_org.api_keys.list()
    assert [k.name for k in page.data] == ["research", "default-ws", "eng-old", "eng-ci"]
    key = page.data[-1]
    assert key.id.startswith("apikey_") and key.type == "api_key"
    assert key.created_by is not None and key.created_by.type == "user"
    assert key.created_by.id == shared_sim.user_id("alice@acme.test")
    assert key.principal is None
    assert key.scope.type == "workspace" and key.scope.workspace_id == shared_sim.workspace_id("Engineering")
    assert key.partial_key_hint and key.partial_key_hint.startswith("sk-ant-api03-")
    assert key.expires_at is None and key.status == "active"
    # Under 2026-10-21 the deprecated top-level workspace_id is gone; no secret anywhere.
    assert key.model_extra == {}


def test_filters_combine_with_and(shared_org, shared_sim: Sim) -> None:
    eng = shared_sim.workspace_id("Engineering")
    alice, bob = shared_sim.user_id("alice@acme.test"), shared_sim.user_id("bob@acme.test")
    names = lambda **f: sorted(k.name for k in shared_org.api_keys.list(**f))  # noqa: E731
    assert names(status="active") == ["default-ws", "eng-ci", "research"]
    assert names(status="inactive") == ["eng-old"]
    assert names(workspace_id=eng) == ["eng-ci", "eng-old"]
    assert names(created_by_user_id=alice) == ["default-ws", "eng-ci"]
    assert names(workspace_id=eng, status="active") == ["eng-ci"]
    assert names(workspace_id=eng, created_by_user_id=bob) == ["eng-old"]
    assert names(workspace_id=eng, created_by_user_id=bob, status="active") == []
    # The Default workspace's real id selects keys bound to it.
    assert names(workspace_id=shared_sim.default_workspace_id) == ["default-ws"]


def test_org_scoped_personal_key(org, sim: Sim) -> None:
    alice = sim.user_id("alice@acme.test")
    seeded = sim.add_api_key("alice-personal", scope="organization", created_by_user_id=alice)
    key = org.api_keys.retrieve(seeded["id"])
    assert key.scope.type == "organization"
    assert key.principal is not None and key.principal.type == "user_actor" and key.principal.user_id == alice
    # Org-scoped keys never match a workspace_id filter.
    for ws in (sim.workspace_id("Engineering"), sim.default_workspace_id):
        assert key.id not in [k.id for k in org.api_keys.list(workspace_id=ws)]


def test_get(shared_org, shared_sim: Sim) -> None:
    key_id = shared_sim.key_id("eng-old")
    key = shared_org.api_keys.retrieve(key_id)
    assert (key.id, key.name, key.status) == (key_id, "eng-old", "inactive")


def test_get_unknown_is_not_found(shared_org) -> None:
    with pytest.raises(anthropic.NotFoundError):
        shared_org.api_keys.retrieve("apikey_01UnknownUnknownUnknown0")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.api_keys.update("apikey_01UnknownUnknownUnknown0", name="x")


def test_rename_and_change_status(org, sim: Sim) -> None:
    key_id = sim.key_id("eng-ci")
    assert org.api_keys.update(key_id, name="eng-ci-renamed").name == "eng-ci-renamed"
    assert org.api_keys.update(key_id, status="inactive").status == "inactive"
    assert org.api_keys.update(key_id, status="active").status == "active"
    both = org.api_keys.update(key_id, name="final", status="archived")
    assert (both.name, both.status) == ("final", "archived")
    assert org.api_keys.retrieve(key_id) == both
    # Archiving is permanent.
    with pytest.raises(anthropic.BadRequestError):
        org.api_keys.update(key_id, status="active")


def test_empty_update_is_valid(org, sim: Sim) -> None:
    key_id = sim.key_id("eng-ci")
    before = org.api_keys.retrieve(key_id)
    assert org.api_keys.update(key_id) == before


def test_expired_cannot_be_set(shared_org, shared_sim: Sim) -> None:
    key_id = shared_sim.key_id("eng-ci")
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.api_keys.update(key_id, status="expired")  # type: ignore[arg-type]
    assert info.value.type == "invalid_request_error"
    assert shared_org.api_keys.retrieve(key_id).status == "active"


@pytest.mark.parametrize("name", ["", "n" * 501])
def test_name_length_bounds(shared_org, shared_sim: Sim, name: str) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.api_keys.update(shared_sim.key_id("eng-ci"), name=name)


def test_expiry_is_derived_from_the_clock(org, sim: Sim) -> None:
    now = sim.state()["now"]
    from datetime import datetime, timedelta

    expires = (datetime.fromisoformat(now.replace("Z", "+00:00")) + timedelta(days=3)).isoformat()
    seeded = sim.add_api_key("short-lived", workspace_id=sim.workspace_id("Research"), expires_at=expires)
    key = org.api_keys.retrieve(seeded["id"])
    assert key.status == "active" and key.expires_at is not None
    sim.advance_clock(3 * DAY + 1)
    assert org.api_keys.retrieve(seeded["id"]).status == "expired"
    assert [k.id for k in org.api_keys.list(status="expired")] == [seeded["id"]]
    # An expired key cannot be changed.
    with pytest.raises(anthropic.BadRequestError):
        org.api_keys.update(seeded["id"], status="active")


def test_paging_keys(org, sim: Sim) -> None:
    research = sim.workspace_id("Research")
    for i in range(30):
        sim.add_api_key(f"bulk-{i:02d}", workspace_id=research)
    names = [k.name for k in org.api_keys.list(workspace_id=research, limit=8)]
    assert names == [f"bulk-{i:02d}" for i in range(29, -1, -1)] + ["research"]
