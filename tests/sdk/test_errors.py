"""Errors: the envelope, the SDK exception class each status/error_code maps to, rate limits,
fault injection, credentials, and malformed input that must never become a 500."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.types import ChangeOutcomeUnknownError, ConcurrentMembershipChangeError

from conftest import ADMIN_KEY, NON_ADMIN_KEY, OTHER_ADMIN_LOOKING_KEY, Sim


def assert_envelope(err: anthropic.APIStatusError, error_type: str) -> None:
    body = err.body
    assert isinstance(body, dict), body
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type == err.type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert body["request_id"] == err.request_id


# ---------------------------------------------------------------- rate limits


def test_rate_limit_from_settings(org, sim: Sim) -> None:
    sim.settings(rate_limit_per_minute=2)
    org.retrieve()
    org.users.list()
    with pytest.raises(anthropic.RateLimitError) as info:
        org.users.list()
    err = info.value
    assert_envelope(err, "rate_limit_error")
    assert err.error_code is None
    # 2 per minute: the next token arrives in 30 s, reported as integer seconds.
    assert err.response.headers["retry-after"] == "30"
    sim.advance_clock(30)
    assert org.retrieve().type == "organization"


def test_rate_limit_is_per_org_across_endpoints(org, sim: Sim) -> None:
    sim.settings(rate_limit_per_minute=3)
    org.users.list()
    org.invites.list()
    org.workspaces.list()
    with pytest.raises(anthropic.RateLimitError):
        org.api_keys.list()


def test_invite_creation_has_its_own_hourly_budget(org, sim: Sim) -> None:
    sim.settings(invite_limit_per_hour=2)
    org.invites.create(email="i1@acme.test", role="user")
    org.invites.create(email="i2@acme.test", role="user")
    with pytest.raises(anthropic.RateLimitError) as info:
        org.invites.create(email="i3@acme.test", role="user")
    assert int(info.value.response.headers["retry-after"]) == 1800
    # Other endpoints are unaffected.
    assert len(org.invites.list().data) == 3


def test_injected_429_with_retry_after(org, sim: Sim) -> None:
    sim.fault("users.list", 429, count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(anthropic.RateLimitError) as info:
            org.users.list()
        assert info.value.response.headers["retry-after"] == "7"
        assert_envelope(info.value, "rate_limit_error")
    assert len(org.users.list().data) == 5


# ---------------------------------------------------------------- injected server faults


def test_injected_500(org, sim: Sim) -> None:
    sim.fault("workspaces.list", 500)
    with pytest.raises(anthropic.InternalServerError) as info:
        org.workspaces.list()
    assert type(info.value) is anthropic.InternalServerError
    assert info.value.status_code == 500
    assert_envelope(info.value, "api_error")
    assert org.workspaces.list().data  # one-shot


def test_injected_529(org, sim: Sim) -> None:
    sim.fault("*", 529)
    with pytest.raises(anthropic.OverloadedError) as info:
        org.retrieve()
    assert isinstance(info.value, anthropic.InternalServerError)
    assert info.value.status_code == 529
    assert_envelope(info.value, "overloaded_error")


def test_injected_409_concurrent_membership_change(org, sim: Sim) -> None:
    bob = sim.user_id("bob@acme.test")
    sim.fault("users.delete", 409)
    with pytest.raises(ConcurrentMembershipChangeError) as info:
        org.users.remove(bob)
    err = info.value
    assert isinstance(err, anthropic.ConflictError)
    assert err.status_code == 409 and err.error_code == "concurrent_membership_change"
    assert err.details is not None and err.details.error_code == "concurrent_membership_change"
    assert_envelope(err, "conflict_error")
    # Nothing happened; retrying works.
    assert org.users.retrieve(bob).id == bob
    assert org.users.remove(bob).type == "user_deleted"


def test_503_change_outcome_unknown_without_apply(org, sim: Sim) -> None:
    bob = sim.user_id("bob@acme.test")
    sim.fault("users.update", 503)
    with pytest.raises(ChangeOutcomeUnknownError) as info:
        org.users.update(bob, role="developer")
    err = info.value
    assert isinstance(err, anthropic.ServiceUnavailableError)
    assert err.status_code == 503 and err.error_code == "change_outcome_unknown"
    assert_envelope(err, "api_error")
    assert org.users.retrieve(bob).role == "user"


def test_503_change_outcome_unknown_with_apply_saves_the_change(org, sim: Sim) -> None:
    bob = sim.user_id("bob@acme.test")
    sim.fault("users.update", 503, apply=True)
    with pytest.raises(ChangeOutcomeUnknownError):
        org.users.update(bob, role="developer")
    assert org.users.retrieve(bob).role == "developer"
    # Sending the same request again finishes without repeating anything.
    assert org.users.update(bob, role="developer").role == "developer"

    sim.fault("invites.create", 503, apply=True)
    with pytest.raises(ChangeOutcomeUnknownError):
        org.invites.create(email="maybe@acme.test", role="user")
    assert [i.email for i in org.invites.list(email="maybe@acme.test")] == ["maybe@acme.test"]


def test_fault_counts_down_and_sdk_retries_retryable_statuses(sim: Sim) -> None:
    retrying = sim.client(max_retries=2)
    sim.fault("*", 529, count=1)
    sim.fault("*", 409, count=1)
    sim.clear_calls()
    assert retrying.organization.retrieve().type == "organization"
    statuses = [c["status"] for c in sim.calls()]
    assert statuses == [529, 409, 200]


def test_validation_errors_are_final(sim: Sim) -> None:
    retrying = sim.client(max_retries=2)
    sim.clear_calls()
    with pytest.raises(anthropic.BadRequestError):
        retrying.organization.invites.create(email="x@acme.test", role="admin")  # type: ignore[arg-type]
    assert [c["status"] for c in sim.calls()] == [400]


def test_fault_control_rejects_unknown_routes(sim: Sim) -> None:
    r = sim.http.post("/_sim/faults", json={"route": "users.explode", "status": 500})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------- credentials


def test_unknown_key_is_authentication_error(shared_sim: Sim) -> None:
    for key in (OTHER_ADMIN_LOOKING_KEY, "garbage"):
        with pytest.raises(anthropic.AuthenticationError) as info:
            shared_sim.client(api_key=key).organization.users.list()
        assert_envelope(info.value, "authentication_error")
        assert "anthropic-organization-id" not in info.value.response.headers


def test_missing_key_is_authentication_error(shared_sim: Sim) -> None:
    # Through the SDK: no credential at all, the Authorization header explicitly omitted.
    bare = shared_sim.client(api_key=None, default_headers={"Authorization": anthropic.omit})
    with pytest.raises(anthropic.AuthenticationError) as info:
        bare.organization.users.list()
    assert "authorization" not in shared_sim.sent[-1].headers and "x-api-key" not in shared_sim.sent[-1].headers
    assert_envelope(info.value, "authentication_error")
    # And raw.
    r = shared_sim.raw("GET", "/v1/organizations/users", key=None)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.json()["request_id"] == r.headers["request-id"]


def test_same_admin_key_in_x_api_key_header(shared_sim: Sim) -> None:
    r = shared_sim.raw("GET", "/v1/organizations/me", key=ADMIN_KEY)
    assert r.status_code == 200 and r.json()["type"] == "organization"


def test_both_credentials_at_once_is_bad_request(shared_sim: Sim) -> None:
    r = shared_sim.raw("GET", "/v1/organizations/me", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 400


def test_non_admin_key_is_permission_denied(sim: Sim) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        sim.client(api_key=NON_ADMIN_KEY).organization.users.list()
    assert_envelope(info.value, "permission_error")
    sim.settings(non_admin_key_status=401)
    with pytest.raises(anthropic.AuthenticationError):
        sim.client(api_key=NON_ADMIN_KEY).organization.users.list()


def test_oauth_token_with_org_admin(sim: Sim) -> None:
    c = sim.client(api_key=None, auth_token="sk-ant-oat01-conformance")
    assert c.organization.retrieve().type == "organization"
    assert sim.sent[-1].headers["authorization"] == "Bearer sk-ant-oat01-conformance"


class TestScopedOAuthTokens:
    @pytest.fixture
    def seed(self, seed: dict[str, Any]) -> dict[str, Any]:
        seed["oauth_tokens"] = [
            {"token": "tok-admin", "scopes": ["org:admin"]},
            {"token": "tok-user", "scopes": ["user:inference"]},
        ]
        return seed

    def test_scopes(self, sim: Sim) -> None:
        assert sim.client(api_key=None, auth_token="tok-admin").organization.retrieve().type == "organization"
        with pytest.raises(anthropic.PermissionDeniedError):
            sim.client(api_key=None, auth_token="tok-user").organization.retrieve()
        with pytest.raises(anthropic.AuthenticationError):
            sim.client(api_key=None, auth_token="tok-unknown").organization.retrieve()
        # The admin key still works alongside configured tokens.
        assert sim.client().organization.retrieve().type == "organization"


# ---------------------------------------------------------------- malformed input never 500s


BAD_BODIES = [
    ("POST", "/v1/organizations/invites", b'{"email":', "application/json"),
    ("POST", "/v1/organizations/invites", b"[1, 2]", "application/json"),
    ("POST", "/v1/organizations/invites", b'"just a string"', "application/json"),
    ("POST", "/v1/organizations/invites", b"\xff\xfe\x00garbage", "application/json"),
    ("POST", "/v1/organizations/invites", b'{"email": 5, "role": "user"}', "application/json"),
    ("POST", "/v1/organizations/invites", b'{"email": "a@acme.test"}', "application/json"),
    ("POST", "/v1/organizations/invites", b'{"email": "a@acme.test", "role": "user", "x": 1}', "application/json"),
    ("POST", "/v1/organizations/invites", b'{"email": "a@acme.test", "role": "user", "rbac_group_ids": "g"}', "application/json"),
    ("POST", "/v1/organizations/invites", b'{"email": "a@acme.test", "role": "user"}', "text/plain"),
    ("POST", "/v1/organizations/workspaces", b'{"name": 123}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": null}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": "w", "tags": ["a"]}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": "w", "tags": {"k": 5}}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": "w", "data_residency": "us"}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": "w", "data_residency": {"allowed_inference_geos": [1]}}', "application/json"),
    ("POST", "/v1/organizations/workspaces", b'{"name": "w", "display_color": true}', "application/json"),
    ("POST", "/v1/organizations/workspaces/{ws}/members", b'{"user_id": null, "workspace_role": "workspace_user"}', "application/json"),
    ("POST", "/v1/organizations/workspaces/{ws}/members", b'{"user_id": "{bob}", "workspace_role": 3}', "application/json"),
    ("POST", "/v1/organizations/workspaces/{ws}/archive", b'{"force": true}', "application/json"),
    ("POST", "/v1/organizations/users/{bob}", b'{"role": ["user"]}', "application/json"),
    ("POST", "/v1/organizations/users/{bob}", b"{}", "application/json"),
    ("POST", "/v1/organizations/api_keys/{key}", b'{"status": 1}', "application/json"),
    ("POST", "/v1/organizations/api_keys/{key}", b'{"name": {"a": 1}}', "application/json"),
    ("GET", "/v1/organizations/workspaces?include_archived=maybe", b"", "application/json"),
    ("GET", "/v1/organizations/api_keys?status=revoked", b"", "application/json"),
    ("GET", "/v1/organizations/users?limit=1e3", b"", "application/json"),
]


@pytest.mark.parametrize("method,path,body,content_type", BAD_BODIES)
def test_malformed_input_gets_400_envelope(shared_sim: Sim, method: str, path: str, body: bytes, content_type: str) -> None:
    bob = shared_sim.user_id("bob@acme.test")
    path = path.format(ws=shared_sim.workspace_id("Research"), bob=bob, key=shared_sim.key_id("eng-ci"))
    body = body.replace(b"{bob}", bob.encode())
    before = shared_sim.state()
    r = shared_sim.raw(method, path, content=body, headers={"content-type": content_type})
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["message"]
    assert payload["request_id"] == r.headers["request-id"]
    after = shared_sim.state()
    for part in ("users", "invites", "workspaces", "workspace_members", "api_keys"):
        assert after[part] == before[part], f"a rejected request changed {part}"


def test_body_too_large_is_413_envelope(shared_sim: Sim) -> None:
    big = json.dumps({"name": "w", "tags": {"k": "v" * (1024 * 1024 + 10)}}).encode()
    r = shared_sim.raw("POST", "/v1/organizations/workspaces", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_wrong_method_is_an_envelope(shared_sim: Sim) -> None:
    r = shared_sim.raw("PATCH", "/v1/organizations/users/user_01x", json={"role": "user"})
    assert r.status_code == 405
    assert r.json()["type"] == "error" and r.json()["request_id"] == r.headers["request-id"]


def test_errors_through_the_sdk_carry_request_id(shared_org, shared_sim: Sim) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        shared_org.users.retrieve("user_01UnknownUnknownUnknown00")
    assert_envelope(info.value, "not_found_error")
    logged = shared_sim.calls()[-1]
    assert logged["request_id"] == info.value.request_id and logged["status"] == 404
