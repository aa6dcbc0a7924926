"""Workspace members: add / get / list / update / remove and the org-role restrictions."""

from __future__ import annotations

import anthropic
import pytest

from conftest import Sim


def test_list_seeded_members(shared_org, shared_sim: Sim) -> None:
    eng = shared_sim.workspace_id("Engineering")
    page = shared_org.workspaces.members.list(eng)
    assert [(m.user_id, m.workspace_role) for m in page.data] == [
        (shared_sim.user_id("bob@acme.test"), "workspace_user"),
        (shared_sim.user_id("alice@acme.test"), "workspace_developer"),
    ]
    assert all(m.type == "workspace_member" and m.workspace_id == eng for m in page.data)
    # Member pages are keyed by user id.
    assert page.first_id == page.data[0].user_id and page.last_id == page.data[-1].user_id


@pytest.mark.parametrize(
    "role", ["workspace_user", "workspace_developer", "workspace_restricted_developer", "workspace_admin"]
)
def test_add_get_update_remove(org, sim: Sim, role: str) -> None:
    research = sim.workspace_id("Research")
    dave = sim.user_id("dave@acme.test")
    added = org.workspaces.members.add(research, user_id=dave, workspace_role=role)
    assert (added.type, added.user_id, added.workspace_id, added.workspace_role) == (
        "workspace_member",
        dave,
        research,
        role,
    )
    assert org.workspaces.members.retrieve(dave, workspace_id=research) == added
    assert [m.user_id for m in org.workspaces.members.list(research)] == [dave]

    updated = org.workspaces.members.update(dave, workspace_id=research, workspace_role="workspace_admin")
    assert updated.workspace_role == "workspace_admin"
    assert org.workspaces.members.retrieve(dave, workspace_id=research).workspace_role == "workspace_admin"

    removed = org.workspaces.members.remove(dave, workspace_id=research)
    assert (removed.type, removed.user_id, removed.workspace_id) == ("workspace_member_deleted", dave, research)
    assert org.workspaces.members.list(research).data == []
    with pytest.raises(anthropic.NotFoundError):
        org.workspaces.members.retrieve(dave, workspace_id=research)


def test_workspace_billing_is_not_assignable(shared_org, shared_sim: Sim) -> None:
    research = shared_sim.workspace_id("Research")
    with pytest.raises(anthropic.BadRequestError):
        shared_org.workspaces.members.add(research, user_id=shared_sim.user_id("dave@acme.test"), workspace_role="workspace_billing")  # type: ignore[arg-type]
    eng = shared_sim.workspace_id("Engineering")
    with pytest.raises(anthropic.BadRequestError):
        shared_org.workspaces.members.update(shared_sim.user_id("bob@acme.test"), workspace_id=eng, workspace_role="workspace_billing")
    assert shared_org.workspaces.members.retrieve(shared_sim.user_id("bob@acme.test"), workspace_id=eng).workspace_role == "workspace_user"


def test_unknown_workspace_is_not_found(shared_org, shared_sim: Sim) -> None:
    alice = shared_sim.user_id("alice@acme.test")
    missing = "wrkspc_01UnknownUnknownUnknown"
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.add(missing, user_id=alice, workspace_role="workspace_user")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.list(missing)
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.retrieve(alice, workspace_id=missing)
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.update(alice, workspace_id=missing, workspace_role="workspace_user")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.remove(alice, workspace_id=missing)


def test_non_member_and_unknown_user_are_not_found(shared_org, shared_sim: Sim) -> None:
    research = shared_sim.workspace_id("Research")
    alice = shared_sim.user_id("alice@acme.test")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.retrieve(alice, workspace_id=research)
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.update(alice, workspace_id=research, workspace_role="workspace_admin")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.remove(alice, workspace_id=research)
    # Only existing shared_org users can be added (an invitee has no user id yet).
    with pytest.raises(anthropic.NotFoundError):
        shared_org.workspaces.members.add(research, user_id="user_01UnknownUnknownUnknown00", workspace_role="workspace_user")


def test_duplicate_add_is_rejected(shared_org, shared_sim: Sim) -> None:
    eng = shared_sim.workspace_id("Engineering")
    with pytest.raises(anthropic.BadRequestError):
        shared_org.workspaces.members.add(eng, user_id=shared_sim.user_id("alice@acme.test"), workspace_role="workspace_admin")


def test_org_admin_and_billing_memberships_are_locked(org, sim: Sim) -> None:
    research = sim.workspace_id("Research")
    root, carol = sim.user_id("root@acme.test"), sim.user_id("carol@acme.test")
    org.workspaces.members.add(research, user_id=root, workspace_role="workspace_admin")
    org.workspaces.members.add(research, user_id=carol, workspace_role="workspace_user")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.members.update(root, workspace_id=research, workspace_role="workspace_user")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.members.remove(root, workspace_id=research)
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.members.update(carol, workspace_id=research, workspace_role="workspace_developer")
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.members.remove(carol, workspace_id=research)
    # The one exception: a billing member may be raised to workspace_admin.
    assert org.workspaces.members.update(carol, workspace_id=research, workspace_role="workspace_admin").workspace_role == "workspace_admin"


def test_member_pagination(org, sim: Sim) -> None:
    research = sim.workspace_id("Research")
    ids = []
    for i in range(12):
        uid = sim.add_user(f"m{i:02d}@acme.test", "user")["id"]
        org.workspaces.members.add(research, user_id=uid, workspace_role="workspace_user")
        ids.append(uid)
    first = org.workspaces.members.list(research, limit=5)
    assert [m.user_id for m in first.data] == ids[::-1][:5] and first.has_more
    assert [m.user_id for m in org.workspaces.members.list(research, limit=5)] == ids[::-1]
    # Backwards from the oldest member.
    back = org.workspaces.members.list(research, before_id=ids[0], limit=5)
    assert [m.user_id for m in back.data] == ids[::-1][6:11] and back.has_more


def test_archived_workspace_takes_no_new_members(org, sim: Sim) -> None:
    research = sim.workspace_id("Research")
    org.workspaces.archive(research)
    with pytest.raises(anthropic.BadRequestError):
        org.workspaces.members.add(research, user_id=sim.user_id("dave@acme.test"), workspace_role="workspace_user")


def test_workspace_member_limit_is_typed(org, sim: Sim) -> None:
    from anthropic.types.organization import WorkspaceMemberLimitExceededError

    sim.settings(workspace_member_limit=2)
    eng = sim.workspace_id("Engineering")  # already has alice and bob
    with pytest.raises(WorkspaceMemberLimitExceededError) as info:
        org.workspaces.members.add(eng, user_id=sim.user_id("dave@acme.test"), workspace_role="workspace_user")
    assert info.value.status_code == 400 and info.value.error_code == "workspace_member_limit_exceeded"
    research = sim.workspace_id("Research")
    assert org.workspaces.members.add(research, user_id=sim.user_id("dave@acme.test"), workspace_role="workspace_user")
