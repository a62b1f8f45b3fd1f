"""OAuth dance against the sandbox: authorize page, approve/deny, codes, refresh, revoke."""
from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sage_sandbox import SageSandbox


def _authorize_params(app, state="xyz", **extra):
    return {"filter": "apiv3.1", "response_type": "code", "client_id": app["client_id"],
            "redirect_uri": app["redirect_uri"], "scope": "full_access", "state": state,
            **extra}


def _hidden_fields(page: str) -> dict:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def _query(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _exchange(sandbox, app, code, **overrides):
    data = {"client_id": app["client_id"], "client_secret": app["client_secret"], "code": code,
            "grant_type": "authorization_code", "redirect_uri": app["redirect_uri"],
            **overrides}
    return requests.post(sandbox.token_url, data=data, timeout=10)


def _refresh(sandbox, app, refresh_token, auth=None):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if auth is None:
        data.update(client_id=app["client_id"], client_secret=app["client_secret"])
    return requests.post(sandbox.token_url, data=data, auth=auth, timeout=10)


def test_full_dance_authorize_page_allow_exchange_and_call(sandbox, app, sage_user):
    page = requests.get(sandbox.authorize_url, params=_authorize_params(app, country="gb"),
                        timeout=10)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "owner@example.com" in page.text
    assert 'value="allow"' in page.text and 'value="deny"' in page.text
    fields = _hidden_fields(page.text)
    assert fields["client_id"] == app["client_id"] and fields["state"] == "xyz"

    allow = requests.post(sandbox.authorize_url, data={**fields, "decision": "allow"},
                          allow_redirects=False, timeout=10)
    assert allow.status_code == 302
    location = allow.headers["Location"]
    assert location.startswith(app["redirect_uri"] + "?")
    assert "code=GB%2F" in location  # country-prefixed and URL-encoded, like Sage
    q = _query(location)
    assert q["state"] == "xyz" and q["country"] == "GB" and q["code"].startswith("GB/")

    token = _exchange(sandbox, app, q["code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in",
                         "refresh_token_expires_in", "scope", "requested_by_id"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["refresh_token_expires_in"] == 2678400
    assert body["scope"] == "full_access"
    assert body["requested_by_id"] == sage_user["user_id"]

    user = requests.get(sandbox.api_url + "/user",
                        headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10)
    assert user.status_code == 200
    assert user.json()["email"] == "owner@example.com"


def test_deny_redirects_with_access_denied(sandbox, app, sage_user):
    page = requests.get(sandbox.authorize_url, params=_authorize_params(app, state="s1"),
                        timeout=10)
    fields = _hidden_fields(page.text)
    deny = requests.post(sandbox.authorize_url, data={**fields, "decision": "deny"},
                         allow_redirects=False, timeout=10)
    assert deny.status_code == 302
    q = _query(deny.headers["Location"])
    assert q == {"error": "access_denied", "state": "s1"}


@pytest.mark.parametrize("change", [{"client_id": "nope"},
                                    {"redirect_uri": "http://evil.example/cb"},
                                    {"redirect_uri": "HTTP://LOCALHOST:8069/sage_one/oauth/callback"}])
def test_unknown_client_or_redirect_is_a_400_page_never_a_redirect(sandbox, app, sage_user,
                                                                   change):
    r = requests.get(sandbox.authorize_url, params={**_authorize_params(app), **change},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 400
    assert "Location" not in r.headers
    assert "text/html" in r.headers["Content-Type"]


def test_bad_scope_and_response_type_redirect_with_error(sandbox, app, sage_user):
    r = requests.get(sandbox.authorize_url, params=_authorize_params(app, scope="admin"),
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302 and _query(r.headers["Location"])["error"] == "invalid_scope"
    r = requests.get(sandbox.authorize_url,
                     params=_authorize_params(app, response_type="token"),
                     allow_redirects=False, timeout=10)
    assert _query(r.headers["Location"])["error"] == "unsupported_response_type"


def test_code_is_single_use(sandbox, app, sage_user):
    code = _query(sandbox.approve(app["client_id"], app["redirect_uri"], "st"))["code"]
    assert _exchange(sandbox, app, code).status_code == 200
    again = _exchange(sandbox, app, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert again.json()["error_description"]


def test_code_expires_after_code_ttl(sandbox, app, sage_user):
    code = _query(sandbox.approve(app["client_id"], app["redirect_uri"], "st"))["code"]
    sandbox.advance_clock(61)
    r = _exchange(sandbox, app, code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_redirect_uri_must_match(sandbox, app, sage_user):
    code = _query(sandbox.approve(app["client_id"], app["redirect_uri"], "st"))["code"]
    r = _exchange(sandbox, app, code, redirect_uri=app["redirect_uri"] + "/other")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_bad_client_secret_is_401_invalid_client(sandbox, app, sage_user):
    code = _query(sandbox.approve(app["client_id"], app["redirect_uri"], "st"))["code"]
    r = _exchange(sandbox, app, code, client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # the code was not consumed by the failed client authentication
    assert _exchange(sandbox, app, code).status_code == 200


def test_client_credentials_via_http_basic(sandbox, app, sage_user):
    code = _query(sandbox.approve(app["client_id"], app["redirect_uri"], "st"))["code"]
    r = requests.post(sandbox.token_url, auth=(app["client_id"], app["client_secret"]),
                      data={"grant_type": "authorization_code", "code": code,
                            "redirect_uri": app["redirect_uri"]}, timeout=10)
    assert r.status_code == 200, r.text
    refreshed = _refresh(sandbox, app, r.json()["refresh_token"],
                         auth=(app["client_id"], app["client_secret"]))
    assert refreshed.status_code == 200


def test_refresh_rotates_and_old_refresh_token_is_rejected(sandbox, app, tokens):
    first = _refresh(sandbox, app, tokens["refresh_token"])
    assert first.status_code == 200
    new = first.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token_expires_in"] == 2678400
    old = _refresh(sandbox, app, tokens["refresh_token"])
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"
    assert _refresh(sandbox, app, new["refresh_token"]).status_code == 200


def test_revoke_makes_refresh_and_its_access_token_unusable(sandbox, app, tokens):
    r = requests.post(sandbox.revoke_url, data={"client_id": app["client_id"],
                                                "client_secret": app["client_secret"],
                                                "token": tokens["refresh_token"]}, timeout=10)
    assert r.status_code == 200 and r.json() == {"success": "ok"}
    assert _refresh(sandbox, app, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    api = requests.get(sandbox.api_url + "/user",
                       headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert api.status_code == 401


def test_revoke_with_bad_client_is_401(sandbox, app, tokens):
    r = requests.post(sandbox.revoke_url, data={"client_id": app["client_id"],
                                                "client_secret": "bad",
                                                "token": tokens["refresh_token"]}, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_expired_access_token_gets_401_error_array(sandbox, app, tokens):
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(sandbox.api_url + "/user", headers=headers, timeout=10).status_code == 200
    sandbox.expire_access_tokens()
    r = requests.get(sandbox.api_url + "/user", headers=headers, timeout=10)
    assert r.status_code == 401
    errors = r.json()
    assert isinstance(errors, list) and errors[0]["$severity"] == "error"
    assert {"$dataCode", "$message", "$source"} <= set(errors[0])
    assert r.headers["x-request-id"]
    # a refreshed token works again
    fresh = _refresh(sandbox, app, tokens["refresh_token"]).json()
    r = requests.get(sandbox.api_url + "/user",
                     headers={"Authorization": f"Bearer {fresh['access_token']}"}, timeout=10)
    assert r.status_code == 200


def test_access_token_ttl_is_honoured(app):
    with SageSandbox(access_token_ttl=30) as sb:
        sb.register_app(app["client_id"], app["client_secret"], [app["redirect_uri"]])
        sb.add_user(email="a@example.com")
        tok = sb.issue_tokens(app["client_id"])
        assert tok["expires_in"] == 30
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        assert requests.get(sb.api_url + "/user", headers=headers, timeout=10).status_code == 200
        sb.advance_clock(31)
        assert requests.get(sb.api_url + "/user", headers=headers, timeout=10).status_code == 401


def test_missing_or_unknown_bearer_is_401(sandbox, tokens):
    assert requests.get(sandbox.api_url + "/user", timeout=10).status_code == 401
    r = requests.get(sandbox.api_url + "/user", headers={"Authorization": "Bearer nope"},
                     timeout=10)
    assert r.status_code == 401


def test_auto_approve_redirects_at_once(app):
    with SageSandbox(auto_approve=True) as sb:
        sb.register_app(app["client_id"], app["client_secret"], [app["redirect_uri"]])
        sb.add_user(email="a@example.com")
        r = requests.get(sb.authorize_url, params=_authorize_params(app), allow_redirects=False,
                         timeout=10)
        assert r.status_code == 302
        q = _query(r.headers["Location"])
        assert q["code"].startswith("GB/") and q["state"] == "xyz"


def test_pkce_s256_verifier_is_checked(sandbox, app, sage_user):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    challenge = challenge.rstrip(b"=").decode()
    page = requests.get(sandbox.authorize_url, timeout=10, params=_authorize_params(
        app, code_challenge=challenge, code_challenge_method="S256"))
    loc = requests.post(sandbox.authorize_url, allow_redirects=False, timeout=10,
                        data={**_hidden_fields(page.text), "decision": "allow"}
                        ).headers["Location"]
    code = _query(loc)["code"]
    assert _exchange(sandbox, app, code, code_verifier="w" * 50).status_code == 400
    loc = sandbox.approve(app["client_id"], app["redirect_uri"], "s", code_challenge=challenge,
                          code_challenge_method="S256")
    assert _exchange(sandbox, app, _query(loc)["code"], code_verifier=verifier).status_code == 200


def test_readonly_scope_cannot_write(sandbox, app, sage_user):
    tok = sandbox.issue_tokens(app["client_id"], scope="readonly")
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    assert requests.get(sandbox.api_url + "/contacts", headers=headers,
                        timeout=10).status_code == 200
    r = requests.post(sandbox.api_url + "/contacts", headers=headers, timeout=10,
                      json={"contact": {"name": "X", "contact_type_ids": ["CUSTOMER"]}})
    assert r.status_code == 403
