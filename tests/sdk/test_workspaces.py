"""Workspaces: create / get / list / update / archive, and the hidden Default workspace."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types.organization import Workspace
from anthropic.types.beta.organization import BetaWorkspace

from conftest import Sim


def test_create_with_every_field(org) -> None:
    ws = org.workspaces.create(
        name="Platform",
        display_color="#1A2b3C",
        tags={"team": "platform", "cost-center": "42"},
        data_residency={"workspace_geo": "us", "allowed_inference_geos": ["us"], "default_inference_geo": "us"},
    )
    assert isinstance(ws, (Workspace, BetaWorkspace))
    assert ws.id.startswith("wrkspc_") and ws.type == "workspace"
    assert (ws.name, ws.display_color) == ("Platform", "#1A2b3C")
    assert ws.tags == {"team": "platform", "cost-center": "42"}
    assert ws.data_residency.workspace_geo == "us"
    assert ws.data_residency.allowed_inference_geos == ["us"]
    assert ws.data_residency.default_inference_geo == "us"
    assert ws.archived_at is None and ws.external_key_id is None and ws.user_profile_id is None
    assert ws.compartment_id
    assert org.workspaces.retrieve(ws.id) == ws


def test_create_defaults(org) -> None:
    ws = org.workspaces.create(name="Bare")
    assert ws.data_residency.allowed_inference_geos == "unrestricted"
    assert ws.data_residency.default_inference_geo == "global"
    assert ws.data_residency.workspace_geo == "us"
    assert ws.tags == {}
    assert len(ws.display_color) == 7 and ws.display_color.startswith("#")


def test_name_length_bounds(org) -> None:
    assert org.workspaces.create(name="x" * 40).name == "x" * 40
    with pytest.raises(anthropic.BadRequestError) as info:
        org.workspaces.create(name="x" * 41)
    assert info.value.type == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.create(name="")


@pytest.mark.parametrize(
    "fields",
    [
        {"display_color": "red"},
        {"display_color": "#12345"},
        {"tags": {"anthropic-internal": "x"}},
        {"data_residency": {"allowed_inference_geos": ["us"], "default_inference_geo": "global"}},
        {"data_residency": {"workspace_geo": "eu"}},
        {"external_key_id": "not-a-key"},
        {"user_profile_id": "uprof_01DoesNotExist"},
    ],
    ids=["color-word", "color-short", "tag-prefix", "geo-default-not-allowed", "geo-eu", "bad-ekey", "user-profile"],
)
def test_create_validation(shared_org, fields: dict[str, Any]) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.workspaces.create(name="Invalid", **fields)
    assert "Invalid" not in [w.name for w in shared_org.workspaces.list()]


def test_unknown_user_profile_is_typed(shared_org) -> None:
    from anthropic.types import UserProfileNotFoundError

    with pytest.raises(UserProfileNotFoundError) as info:
        shared_org.workspaces.create(name="Profiled", user_profile_id="uprof_01DoesNotExist")
    assert info.value.error_code == "user_profile_not_found"


def test_list_hides_default_and_archived(org, sim: Sim) -> None:
    names = [w.name for w in org.workspaces.list()]
    assert names == ["Research", "Engineering"]
    research = sim.workspace_id("Research")
    org.workspaces.archive(research)
    assert [w.name for w in org.workspaces.list()] == ["Engineering"]
    assert [w.name for w in org.workspaces.list(include_archived=True)] == ["Research", "Engineering"]
    assert [w.name for w in org.workspaces.list(include_archived=False)] == ["Engineering"]


def test_default_workspace_is_gettable_never_listed_unless_asked(org, sim: Sim) -> None:
    default_id = sim.default_workspace_id
    default = org.workspaces.retrieve(default_id)
    assert default.id == default_id and default.name == "Default" and default.archived_at is None
    assert default_id not in [w.id for w in org.workspaces.list(include_archived=True, limit=1000)]
    # The SDK's `include_default` asks for it explicitly; it sorts as the oldest workspace.
    with_default = [w.id for w in org.workspaces.list(include_default=True)]
    assert with_default[-1] == default_id and len(with_default) == 3


def test_list_by_ids(org, sim: Sim) -> None:
    eng, research = sim.workspace_id("Engineering"), sim.workspace_id("Research")
    default_id = sim.default_workspace_id
    assert [w.id for w in org.workspaces.list(ids=[eng])] == [eng]
    # Unknown ids are left out; the Default workspace only with include_default.
    assert [w.id for w in org.workspaces.list(ids=[eng, "wrkspc_01Unknown", default_id])] == [eng]
    assert [w.id for w in org.workspaces.list(ids=[default_id, research], include_default=True)] == [research, default_id]
    org.workspaces.archive(research)
    assert org.workspaces.list(ids=[research]).data == []
    assert [w.id for w in org.workspaces.list(ids=[research], include_archived=True)] == [research]


def test_list_by_too_many_ids_is_rejected(shared_org) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.workspaces.list(ids=[f"wrkspc_{i:024d}" for i in range(101)])


def test_default_workspace_cannot_be_renamed_or_archived(org, sim: Sim) -> None:
    default_id = sim.default_workspace_id
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.update(default_id, name="Renamed")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.archive(default_id)
    assert org.workspaces.retrieve(default_id).name == "Default"


def test_update(org, sim: Sim) -> None:
    eng = sim.workspace_id("Engineering")
    ws = org.workspaces.update(eng, name="Eng", display_color="#000000", tags={"team": "core", "tier": "1"})
    assert (ws.name, ws.display_color, ws.tags) == ("Eng", "#000000", {"team": "core", "tier": "1"})
    # A null tag value deletes the tag; others are kept.
    ws = org.workspaces.update(eng, tags={"tier": None})
    assert ws.tags == {"team": "core"}
    ws = org.workspaces.update(eng, data_residency={"allowed_inference_geos": ["us", "global"], "default_inference_geo": "us"})
    assert ws.data_residency.allowed_inference_geos == ["us", "global"]
    assert ws.name == "Eng"  # untouched fields stay
    assert org.workspaces.retrieve(eng) == ws
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.update(eng, name="y" * 41)


def test_external_key_is_write_once(org, sim: Sim) -> None:
    eng = sim.workspace_id("Engineering")
    assert org.workspaces.update(eng, external_key_id="ekey_01AAAAAAAAAAAAAAAAAAAAAA").external_key_id == "ekey_01AAAAAAAAAAAAAAAAAAAAAA"
    # Same value again is a no-op; a different one is refused.
    org.workspaces.update(eng, external_key_id="ekey_01AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.update(eng, external_key_id="ekey_01BBBBBBBBBBBBBBBBBBBBBB")


def test_archive(org, sim: Sim) -> None:
    eng = sim.workspace_id("Engineering")
    ws = org.workspaces.archive(eng)
    assert ws.id == eng and ws.archived_at is not None
    assert org.workspaces.retrieve(eng).archived_at == ws.archived_at
    # Every key in it stops being active.
    statuses = {k.name: k.status for k in org.api_keys.list(workspace_id=eng)}
    assert statuses == {"eng-ci": "archived", "eng-old": "archived"}
    # Irreversible: no second archive, no update.
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.archive(eng)
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.update(eng, name="Back")


def test_unknown_workspace_is_not_found(shared_org) -> None:
    for call in (
        lambda: shared_org.workspaces.retrieve("wrkspc_01Unknown"),
        lambda: shared_org.workspaces.update("wrkspc_01Unknown", name="x"),
        lambda: shared_org.workspaces.archive("wrkspc_01Unknown"),
    ):
        with pytest.raises(anthropic.NotFoundError):
            call()


def test_workspace_cap_counts_only_active(org, sim: Sim) -> None:
    sim.settings(max_workspaces=3)
    org.workspaces.create(name="Third")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.create(name="Fourth")
    org.workspaces.archive(sim.workspace_id("Research"))
    assert org.workspaces.create(name="Fourth").name == "Fourth"
