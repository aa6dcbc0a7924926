"""Sign-out beta (`client.beta.organization.users.sign_out`, §14) and the Enterprise org shape."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import BetaOrganizationNotEnrolledInBetaError
from anthropic.types.beta.organization import (
    BetaCannotSignOutMembershipAdminError,
    BetaCannotSignOutOwnerError,
    BetaCannotSignOutPrimaryOwnerError,
    BetaCannotSignOutPrivilegedMemberError,
)

from conftest import ADMIN_KEY, Sim

SIGN_OUT_BETA = "admin-user-sign-out-2026-10-08"


def test_sign_out_exists_only_in_the_beta_namespace(client: anthropic.Anthropic) -> None:
    assert hasattr(client.beta.organization.users, "sign_out")
    assert not hasattr(client.organization.users, "sign_out")


def test_console_org_is_not_enrolled(sim: Sim, client: anthropic.Anthropic) -> None:
    bob = sim.user_id("bob@acme.test")
    with pytest.raises(BetaOrganizationNotEnrolledInBetaError) as info:
        client.beta.organization.users.sign_out(bob)
    err = info.value
    assert isinstance(err, anthropic.BadRequestError)
    assert err.error_code == "organization_not_enrolled_in_beta"
    assert sim.sent[-1].headers["anthropic-beta"] == SIGN_OUT_BETA


def test_console_org_enrolled_by_setting(sim: Sim, client: anthropic.Anthropic) -> None:
    sim.settings(sign_out_beta_enrolled=True)
    bob = sim.user_id("bob@acme.test")
    assert client.beta.organization.users.sign_out(bob).id == bob
    # An org admin has owner permissions: an Admin API key cannot sign them out.
    with pytest.raises(BetaCannotSignOutOwnerError):
        client.beta.organization.users.sign_out(sim.user_id("root@acme.test"))


class TestEnterprise:
    @pytest.fixture
    def seed(self) -> dict[str, Any]:
        return {
            "organization": {"name": "Big Enterprise", "kind": "enterprise"},
            "admin_keys": [ADMIN_KEY],
            "users": [
                {"email": "po@ent.test", "role": "primary_owner"},
                {"email": "owner@ent.test", "role": "owner"},
                {"email": "madmin@ent.test", "role": "membership_admin"},
                {"email": "managed@ent.test", "role": "managed"},
                {"email": "member@ent.test", "name": "Member", "role": "user"},
            ],
        }

    def test_sign_out_member(self, sim: Sim, client: anthropic.Anthropic) -> None:
        uid = sim.user_id("member@ent.test")
        user = client.beta.organization.users.sign_out(uid)
        assert (user.id, user.type, user.email, user.role) == (uid, "user", "member@ent.test", "user")
        # The member stays a member with the same role.
        assert client.beta.organization.users.retrieve(uid).role == "user"
        call = sim.calls()[-2]
        assert call["route"] == "users.sign_out" and call["status"] == 200

    def test_sign_out_managed_member(self, sim: Sim, client: anthropic.Anthropic) -> None:
        uid = sim.user_id("managed@ent.test")
        assert client.beta.organization.users.sign_out(uid).role == "managed"

    def test_unknown_user(self, client: anthropic.Anthropic) -> None:
        with pytest.raises(anthropic.NotFoundError):
            client.beta.organization.users.sign_out("user_01UnknownUnknownUnknown00")

    def test_refusals_with_an_api_key(self, sim: Sim, client: anthropic.Anthropic) -> None:
        users = client.beta.organization.users
        with pytest.raises(BetaCannotSignOutPrimaryOwnerError) as po:
            users.sign_out(sim.user_id("po@ent.test"))
        assert po.value.status_code == 400 and po.value.error_code == "cannot_sign_out_primary_owner"
        with pytest.raises(BetaCannotSignOutOwnerError) as owner:
            users.sign_out(sim.user_id("owner@ent.test"))
        assert owner.value.status_code == 403 and owner.value.error_code == "cannot_sign_out_owner"
        with pytest.raises(BetaCannotSignOutMembershipAdminError) as madmin:
            users.sign_out(sim.user_id("madmin@ent.test"))
        assert madmin.value.status_code == 403 and madmin.value.error_code == "cannot_sign_out_membership_admin"

    def test_refusals_with_an_oauth_token(self, sim: Sim) -> None:
        users = sim.client(api_key=None, auth_token="sk-ant-oat01-ent").beta.organization.users
        with pytest.raises(BetaCannotSignOutPrimaryOwnerError):
            users.sign_out(sim.user_id("po@ent.test"))
        for email in ("owner@ent.test", "madmin@ent.test"):
            with pytest.raises(BetaCannotSignOutPrivilegedMemberError) as info:
                users.sign_out(sim.user_id(email))
            assert info.value.status_code == 403
            assert info.value.error_code == "cannot_sign_out_privileged_member"
        assert users.sign_out(sim.user_id("member@ent.test")).email == "member@ent.test"

    def test_beta_header_is_required(self, sim: Sim) -> None:
        uid = sim.user_id("member@ent.test")
        r = sim.raw("POST", f"/v1/organizations/users/{uid}/sign_out")
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"
        ok = sim.raw("POST", f"/v1/organizations/users/{uid}/sign_out", headers={"anthropic-beta": f"other-beta,{SIGN_OUT_BETA}"})
        assert ok.status_code == 200 and ok.json()["id"] == uid

    def test_503_means_send_again(self, sim: Sim, client: anthropic.Anthropic) -> None:
        from anthropic.types import ChangeOutcomeUnknownError

        uid = sim.user_id("member@ent.test")
        sim.fault("users.sign_out", 503, apply=True)
        with pytest.raises(ChangeOutcomeUnknownError):
            client.beta.organization.users.sign_out(uid)
        assert client.beta.organization.users.sign_out(uid).id == uid

    def test_enterprise_roles_and_surface(self, sim: Sim, org) -> None:
        # Enterprise orgs assign `user` / `managed`, never Console roles.
        invite = org.invites.create(email="new@ent.test", role="managed")
        assert invite.role == "managed"
        with pytest.raises(anthropic.BadRequestError):
            org.invites.create(email="dev@ent.test", role="developer")
        assert [u.email for u in org.users.list(roles=["owner", "primary_owner"])] == ["owner@ent.test", "po@ent.test"]
        with pytest.raises(anthropic.BadRequestError):
            org.users.list(roles=["developer"])  # a Console role
        # Workspaces and API keys do not exist for Claude Enterprise orgs (§9).
        with pytest.raises(anthropic.NotFoundError):
            org.workspaces.list()
        with pytest.raises(anthropic.NotFoundError):
            org.api_keys.list()
