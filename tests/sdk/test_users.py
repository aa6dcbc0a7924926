"""Organization members: list / filters / get / update role / remove."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types.organization import CannotRemoveLastMemberError

from conftest import Sim


def test_list_newest_first_with_exact_shape(shared_org, shared_sim: Sim) -> None:
    page = shared_org.users.list()
    emails = [u.email for u in page.data]
    # Seeded in this order, listed most recently added first.
    assert emails == ["dave@acme.test", "carol@acme.test", "bob@acme.test", "alice@acme.test", "root@acme.test"]
    assert page.has_more is False
    assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    root = page.data[-1]
    assert root.type == "user" and root.role == "admin" and root.name == "Root Admin"
    assert root.id.startswith("user_")
    assert root.added_at.tzinfo is not None
    assert root.model_extra == {}


def test_auto_paging_iterates_every_user_across_pages(org, sim: Sim) -> None:
    for i in range(40):
        sim.add_user(f"bulk{i:02d}@acme.test", "user")
    sim.clear_calls()
    seen = [u.email for u in org.users.list(limit=7)]
    assert len(seen) == 45 and len(set(seen)) == 45
    assert seen[0] == "bulk39@acme.test" and seen[-1] == "root@acme.test"
    calls = [c for c in sim.calls() if c["route"] == "users.list"]
    # 45 users / 7 per page = 7 pages; every page after the first continues with after_id.
    assert len(calls) == 7
    assert calls[0]["query"] == "limit=7"
    assert all("after_id=user_" in (c["query"] or "") for c in calls[1:])


def test_default_page_size_is_20_and_iteration_spans_pages(org, sim: Sim) -> None:
    for i in range(25):
        sim.add_user(f"many{i:02d}@acme.test", "developer")
    first = org.users.list()
    assert len(first.data) == 20 and first.has_more is True
    assert first.has_next_page()
    second = first.get_next_page()
    assert len(second.data) == 10 and second.has_more is False
    assert {u.id for u in first.data}.isdisjoint({u.id for u in second.data})


@pytest.mark.parametrize(
    "query",
    ["alice@acme.test", "ALICE@Acme.Test", "alice+hiring@acme.test", "Alice+Other@ACME.test"],
)
def test_email_filter_is_normalized(shared_org, query: str) -> None:
    page = shared_org.users.list(email=query)
    assert [u.email for u in page.data] == ["alice@acme.test"]


def test_email_filter_matching_nobody_is_an_empty_page(shared_org) -> None:
    page = shared_org.users.list(email="nobody@acme.test")
    assert page.data == []
    assert page.has_more is False and page.first_id is None and page.last_id is None


def test_roles_filter_is_ored(shared_org) -> None:
    page = shared_org.users.list(roles=["developer", "billing"])
    assert sorted(u.email for u in page.data) == ["alice@acme.test", "carol@acme.test"]
    assert [u.email for u in shared_org.users.list(roles=["admin"]).data] == ["root@acme.test"]
    assert [u.email for u in shared_org.users.list(roles=["claude_code_user", "user"]).data] == ["dave@acme.test", "bob@acme.test"]


@pytest.mark.parametrize("role", ["superuser", "owner", "managed", "membership_admin"])
def test_roles_filter_rejects_roles_foreign_to_a_console_org(shared_org, role: str) -> None:
    # "Accepted values depend on the organization type": Enterprise roles are unknown here.
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.users.list(roles=["user", role])
    assert "roles" in (info.value.api_message or "")


def test_filters_apply_before_paging(org, sim: Sim) -> None:
    for i in range(6):
        sim.add_user(f"dev{i}@acme.test", "developer")
        sim.add_user(f"usr{i}@acme.test", "user")
    devs = list(org.users.list(roles=["developer"], limit=2))
    assert len(devs) == 7  # 6 new + alice
    assert all(u.role == "developer" for u in devs)


def test_get(shared_org, shared_sim: Sim) -> None:
    uid = shared_sim.user_id("carol@acme.test")
    user = shared_org.users.retrieve(uid)
    assert (user.id, user.email, user.role, user.name) == (uid, "carol@acme.test", "billing", "Carol")


def test_get_unknown_is_not_found(shared_org) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        shared_org.users.retrieve("user_01UnknownUnknownUnknown00")
    assert info.value.type == "not_found_error"


@pytest.mark.parametrize("role", ["user", "developer", "billing", "claude_code_user"])
def test_update_role(org, sim: Sim, role: str) -> None:
    uid = sim.user_id("bob@acme.test")
    updated = org.users.update(uid, role=role)
    assert updated.role == role and updated.id == uid
    assert org.users.retrieve(uid).role == role


def test_update_to_admin_is_rejected(shared_org, shared_sim: Sim) -> None:
    uid = shared_sim.user_id("bob@acme.test")
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.users.update(uid, role="admin")  # type: ignore[arg-type]
    assert info.value.type == "invalid_request_error"
    assert shared_org.users.retrieve(uid).role == "user"


def test_managed_role_is_enterprise_only(shared_org, shared_sim: Sim) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.users.update(shared_sim.user_id("bob@acme.test"), role="managed")


def test_admin_cannot_be_updated(shared_org, shared_sim: Sim) -> None:
    root = shared_sim.user_id("root@acme.test")
    with pytest.raises(anthropic.BadRequestError):
        shared_org.users.update(root, role="user")
    assert shared_org.users.retrieve(root).role == "admin"


def test_update_unknown_user_is_not_found(shared_org) -> None:
    with pytest.raises(anthropic.NotFoundError):
        shared_org.users.update("user_01UnknownUnknownUnknown00", role="user")


def test_remove(org, sim: Sim) -> None:
    uid = sim.user_id("alice@acme.test")
    eng = sim.workspace_id("Engineering")
    result = org.users.remove(uid)
    assert (result.id, result.type) == (uid, "user_deleted")
    with pytest.raises(anthropic.NotFoundError):
        org.users.retrieve(uid)
    assert "alice@acme.test" not in [u.email for u in org.users.list()]
    # Explicit workspace memberships go with the user ...
    with pytest.raises(anthropic.NotFoundError):
        org.workspaces.members.retrieve(uid, workspace_id=eng)
    # ... but the workspace keys they created keep working (offboarding must deactivate them).
    keys = org.api_keys.list(created_by_user_id=uid).data
    assert {k.name for k in keys} == {"eng-ci", "default-ws"}
    assert {k.status for k in keys} == {"active"}
    # A second removal is a 404.
    with pytest.raises(anthropic.NotFoundError):
        org.users.remove(uid)


@pytest.mark.parametrize("role", ["admin", "owner", "primary_owner"])
def test_administrative_members_cannot_be_removed(org, sim: Sim, role: str) -> None:
    uid = sim.add_user(f"{role}@acme.test", role)["id"]
    with pytest.raises(anthropic.BadRequestError) as info:
        org.users.remove(uid)
    assert info.value.error_code is None
    assert org.users.retrieve(uid).role == role


class TestLastMember:
    @pytest.fixture
    def seed(self) -> dict[str, Any]:
        return {"users": [{"email": "solo@acme.test", "role": "developer"}]}

    def test_last_member_cannot_be_removed(self, org, sim: Sim) -> None:
        uid = sim.user_id("solo@acme.test")
        with pytest.raises(CannotRemoveLastMemberError) as info:
            org.users.remove(uid)
        assert info.value.error_code == "cannot_remove_last_member"
