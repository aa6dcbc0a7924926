"""Pagination (§3, §11.17-20) as the SDK's SyncPage sees it."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from conftest import ADMIN_KEY, Sim


def _add_users(sim: Sim, n: int, prefix: str = "p") -> list[str]:
    """Adds n users; returns their ids newest first (list order)."""
    return [sim.add_user(f"{prefix}{i:03d}@acme.test", "user")["id"] for i in range(n)][::-1]


@pytest.mark.parametrize(
    "listing",
    [
        lambda org, sim: org.invites.list(statuses=["accepted"]),
        lambda org, sim: org.users.list(roles=["developer"], email="nobody@acme.test"),
        lambda org, sim: org.workspaces.members.list(sim.workspace_id("Research")),
        lambda org, sim: org.api_keys.list(status="expired"),
        lambda org, sim: org.workspaces.list(ids=["wrkspc_01Nothing"]),
    ],
    ids=["invites", "users", "members", "api_keys", "workspaces"],
)
def test_empty_page(shared_org, shared_sim: Sim, listing) -> None:
    page = listing(shared_org, shared_sim)
    assert page.data == []
    assert page.has_more is False
    assert page.first_id is None and page.last_id is None
    assert page.has_next_page() is False
    assert list(page) == []


def test_exact_page_boundary(org, sim: Sim) -> None:
    # 5 seeded + 15 = 20 users: one full default page, nothing more.
    _add_users(sim, 15)
    page = org.users.list()
    assert len(page.data) == 20 and page.has_more is False
    assert page.has_next_page() is False
    # Limit dividing the total exactly: the last full page says has_more=false.
    p1 = org.users.list(limit=10)
    assert len(p1.data) == 10 and p1.has_more is True
    p2 = p1.get_next_page()
    assert len(p2.data) == 10 and p2.has_more is False
    assert p2.has_next_page() is False


def test_after_last_and_before_first_are_empty(org, sim: Sim) -> None:
    full = org.users.list()
    after = org.users.list(after_id=full.last_id)
    assert after.data == [] and after.has_more is False and after.first_id is None
    before = org.users.list(before_id=full.first_id)
    assert before.data == [] and before.has_more is False and before.last_id is None


def test_before_id_paging_walks_backwards(org, sim: Sim) -> None:
    ids = _add_users(sim, 12)  # newest first; the 5 seeded users are older still
    oldest_new = ids[-1]
    page = org.users.list(before_id=oldest_new, limit=4)
    # The 4 items right before the cursor, in list (newest-first) order.
    assert [u.id for u in page.data] == ids[-5:-1]
    assert page.has_more is True  # more in the backward direction
    assert page.first_id == ids[-5] and page.last_id == ids[-2]
    sim.clear_calls()
    walked = [u.id for u in org.users.list(before_id=oldest_new, limit=4)]
    # The SDK keeps paging with before_id=first_id until has_more is false.
    assert walked == ids[-5:-1] + ids[-9:-5] + ids[0:3]
    queries = [c["query"] for c in sim.calls() if c["route"] == "users.list"]
    assert len(queries) == 3
    assert all("before_id=" in q and "after_id" not in q for q in queries)


def test_forward_and_backward_agree(org, sim: Sim) -> None:
    ids = _add_users(sim, 9)
    middle = ids[4]
    forward = org.users.list(after_id=middle, limit=3)
    assert [u.id for u in forward.data] == ids[5:8] and forward.has_more is True
    backward = org.users.list(before_id=middle, limit=3)
    assert [u.id for u in backward.data] == ids[1:4] and backward.has_more is True


class TestLargePages:
    @pytest.fixture
    def seed(self) -> dict[str, Any]:
        users = [{"email": f"u{i:04d}@big.test", "role": "user"} for i in range(1003)]
        return {"admin_keys": [ADMIN_KEY], "users": users}

    def test_limit_1000(self, org, sim: Sim) -> None:
        page = org.users.list(limit=1000)
        assert len(page.data) == 1000 and page.has_more is True
        assert page.data[0].email == "u1002@big.test"
        rest = page.get_next_page()
        assert [u.email for u in rest.data] == ["u0002@big.test", "u0001@big.test", "u0000@big.test"]
        assert rest.has_more is False
        assert sum(1 for _ in org.users.list(limit=1000)) == 1003


@pytest.mark.parametrize("limit", [0, -1, 1001, 5000])
def test_limit_out_of_range_is_rejected(shared_org, limit: int) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.users.list(limit=limit)
    assert info.value.type == "invalid_request_error"
    assert "limit" in (info.value.api_message or "")


@pytest.mark.parametrize("raw", ["abc", "1.5", ""])
def test_non_integer_limit_is_rejected(shared_sim: Sim, raw: str) -> None:
    r = shared_sim.raw("GET", f"/v1/organizations/users?limit={raw}")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_both_cursors_rejected(shared_org) -> None:
    page = shared_org.users.list()
    with pytest.raises(anthropic.BadRequestError):
        shared_org.users.list(after_id=page.first_id, before_id=page.last_id)


def test_unknown_cursor_rejected(shared_org) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.users.list(after_id="user_01NeverExistedNeverExist")


def test_cursor_naming_a_deleted_object_still_pages(org, sim: Sim) -> None:
    ids = _add_users(sim, 6)
    first = org.users.list(limit=3)
    org.users.remove(first.last_id)
    rest = org.users.list(after_id=first.last_id, limit=3)
    assert [u.id for u in rest.data] == ids[3:6]
    sim.settings(stale_cursor="error")
    with pytest.raises(anthropic.BadRequestError):
        org.users.list(after_id=first.last_id, limit=3)
