"""Invites: create / get / list filters / withdraw / typed errors / expiry / acceptance."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import pytest
from anthropic.types.organization import AlreadyMemberError, InviteAlreadyExistsError

from conftest import Sim

DAY = 24 * 60 * 60


def test_create_and_get(org, sim: Sim) -> None:
    invite = org.invites.create(email="zoe@acme.test", role="claude_code_user")
    assert invite.id.startswith("invite_")
    assert (invite.type, invite.email, invite.role, invite.status) == ("invite", "zoe@acme.test", "claude_code_user", "pending")
    assert invite.accepted_at is None
    assert invite.rbac_group_ids == []
    assert invite.expires_at - invite.invited_at == timedelta(days=21)
    fetched = org.invites.retrieve(invite.id)
    assert fetched == invite


def test_list_newest_first_and_filters(org, sim: Sim) -> None:
    a = org.invites.create(email="a@acme.test", role="user")
    b = org.invites.create(email="b@acme.test", role="billing")
    c = org.invites.create(email="c+x@acme.test", role="developer")
    sim.accept_invite(a.id)
    listed = [i.email for i in org.invites.list()]
    assert listed == ["c+x@acme.test", "b@acme.test", "a@acme.test", "newbie@acme.test"]

    assert [i.id for i in org.invites.list(statuses=["accepted"])] == [a.id]
    assert {i.id for i in org.invites.list(statuses=["pending"])} == {b.id, c.id, sim.state()["invites"][0]["id"]}
    assert {i.id for i in org.invites.list(statuses=["accepted", "pending"])} == {i.id for i in org.invites.list()}
    assert [i.id for i in org.invites.list(roles=["billing", "user"])] == [b.id, a.id]
    assert [i.id for i in org.invites.list(email="C@ACME.test")] == [c.id]
    assert [i.id for i in org.invites.list(email="b+anything@acme.test")] == [b.id]
    assert list(org.invites.list(email="b@acme.test", statuses=["accepted"])) == []


def test_list_rejects_unknown_status_or_role(shared_org) -> None:
    with pytest.raises(anthropic.BadRequestError):
        shared_org.invites.list(statuses=["deleted"])  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError):
        shared_org.invites.list(roles=["primary_owner"])


def test_withdraw(org, sim: Sim) -> None:
    invite = org.invites.create(email="gone@acme.test", role="user")
    result = org.invites.delete(invite.id)
    assert (result.id, result.type) == (invite.id, "invite_deleted")
    # Withdrawn invites are not listed under any status filter ...
    assert invite.id not in [i.id for i in org.invites.list()]
    # ... and a new invite for the same address is allowed again.
    again = org.invites.create(email="gone@acme.test", role="user")
    assert again.id != invite.id


def test_already_member_error(shared_org, shared_sim: Sim) -> None:
    with pytest.raises(AlreadyMemberError) as info:
        shared_org.invites.create(email="alice@acme.test", role="developer")
    err = info.value
    assert isinstance(err, anthropic.BadRequestError)
    assert err.error_code == "already_member"
    assert err.details is not None and err.details.error_code == "already_member"
    # The message names the existing user.
    assert shared_sim.user_id("alice@acme.test") in (err.api_message or "")


def test_already_member_is_case_insensitive(shared_org) -> None:
    with pytest.raises(AlreadyMemberError):
        shared_org.invites.create(email="Alice@ACME.test", role="developer")


def test_invite_already_exists_error(shared_org, shared_sim: Sim) -> None:
    pending = shared_sim.state()["invites"][0]
    with pytest.raises(InviteAlreadyExistsError) as info:
        shared_org.invites.create(email="newbie@acme.test", role="user")
    err = info.value
    assert err.status_code == 400 and err.error_code == "invite_already_exists"
    assert pending["id"] in (err.api_message or "")


@pytest.mark.parametrize("role", ["admin", "owner", "primary_owner", "membership_admin", "managed"])
def test_non_assignable_roles_rejected(shared_org, role: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.invites.create(email="x@acme.test", role=role)  # type: ignore[arg-type]
    assert type(info.value) is anthropic.BadRequestError
    assert info.value.error_code is None


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@acme.test", "two@@acme.test"])
def test_invalid_email_rejected(shared_org, email: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.invites.create(email=email, role="user")
    assert info.value.error_code is None
    assert "email" in (info.value.api_message or "")


def test_accept_makes_a_member(org, sim: Sim) -> None:
    invite = org.invites.create(email="joiner@acme.test", role="developer")
    sim.clear_calls()
    assert org.users.list(email="joiner@acme.test").data == []
    user = sim.accept_invite(invite.id, name="Joiner")
    listed = org.users.list(email="joiner@acme.test").data
    assert [(u.id, u.name, u.role) for u in listed] == [(user["id"], "Joiner", "developer")]
    # Newest member first.
    assert org.users.list(limit=1).data[0].id == user["id"]
    accepted = org.invites.retrieve(invite.id)
    assert accepted.status == "accepted" and accepted.accepted_at is not None
    # Now a member: a fresh invite is refused with the typed error.
    with pytest.raises(AlreadyMemberError):
        org.invites.create(email="joiner@acme.test", role="developer")


def test_deleting_accepted_invite_fails(org, sim: Sim) -> None:
    invite = org.invites.create(email="joiner@acme.test", role="user")
    sim.accept_invite(invite.id)
    with pytest.raises(anthropic.BadRequestError) as info:
        org.invites.delete(invite.id)
    assert info.value.type == "invalid_request_error"
    assert org.invites.retrieve(invite.id).status == "accepted"


def test_expiry_after_22_days(org, sim: Sim) -> None:
    invite = org.invites.create(email="late@acme.test", role="user")
    sim.advance_clock(20 * DAY)
    assert org.invites.retrieve(invite.id).status == "pending"
    sim.advance_clock(2 * DAY)
    expired = org.invites.retrieve(invite.id)
    assert expired.status == "expired"
    assert {i.id for i in org.invites.list(statuses=["expired"])} >= {invite.id}
    assert invite.id not in {i.id for i in org.invites.list(statuses=["pending"])}
    # An expired invite cannot be withdrawn, and no longer blocks a new one.
    with pytest.raises(anthropic.BadRequestError):
        org.invites.delete(invite.id)
    fresh = org.invites.create(email="late@acme.test", role="user")
    assert fresh.status == "pending"


def test_unknown_invite_is_not_found(shared_org) -> None:
    with pytest.raises(anthropic.NotFoundError):
        shared_org.invites.retrieve("invite_01UnknownUnknownUnknown0")
    with pytest.raises(anthropic.NotFoundError):
        shared_org.invites.delete("invite_01UnknownUnknownUnknown0")


def test_rbac_groups_are_enterprise_only(shared_org) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        shared_org.invites.create(email="grp@acme.test", role="user", rbac_group_ids=["rbac_group_01abc"])
    assert info.value.error_code is None
    assert "rbac_group_ids" in (info.value.api_message or "")


def test_member_limit_counts_pending_invites(org, sim: Sim) -> None:
    from anthropic.types import OrgMemberLimitExceededError

    # 5 members + 1 pending invite = 6 seats taken.
    sim.settings(org_member_limit=7)
    org.invites.create(email="seat7@acme.test", role="user")
    with pytest.raises(OrgMemberLimitExceededError) as info:
        org.invites.create(email="seat8@acme.test", role="user")
    assert info.value.status_code == 400 and info.value.error_code == "org_member_limit_exceeded"
    # Withdrawing a pending invite frees its seat.
    pending = org.invites.list(email="seat7@acme.test").data[0]
    org.invites.delete(pending.id)
    assert org.invites.create(email="seat8@acme.test", role="user").status == "pending"


def test_domain_rules_are_typed(org, sim: Sim) -> None:
    from anthropic.types.organization import CannotInviteEmailsWithUnverifiedDomainsError, EmailDomainNotAllowedError

    sim.settings(allowed_email_domains=["acme.test", "new.acme.test"], unverified_email_domains=["new.acme.test"])
    with pytest.raises(EmailDomainNotAllowedError) as info:
        org.invites.create(email="x@elsewhere.test", role="user")
    assert info.value.error_code == "email_domain_not_allowed"
    with pytest.raises(CannotInviteEmailsWithUnverifiedDomainsError) as info2:
        org.invites.create(email="x@new.acme.test", role="user")
    assert info2.value.error_code == "cannot_invite_emails_with_unverified_domains"
    assert org.invites.create(email="x@ACME.test", role="user").status == "pending"
