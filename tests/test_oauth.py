"""Pure tests (no Odoo) for sage_api.oauth.SageOAuth, Sage mocked with `responses`."""

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import (
    SageAuthError,
    SageConnectionError,
    SageOAuth,
    SageReauthorizationRequired,
    SageServerError,
)

TOKEN_URL = "https://oauth.test/token"
REVOKE_URL = "https://oauth.test/revoke"
AUTH_URL = "https://www.sageone.test/oauth2/auth/central"
REDIRECT = "https://odoo.example.com/sage/callback"
CLIENT_SECRET = "CLIENT-SECRET-do-not-log"
NOW = 1_700_000_000.0


def token_body(access="ACCESS-1-secret", refresh="REFRESH-1-secret", **extra):
    body = {
        "access_token": access,
        "scope": "full_access",
        "token_type": "bearer",
        "expires_in": 300,
        "refresh_token": refresh,
        "refresh_token_expires_in": 2678400,
        "requested_by_id": "c3c32d1c-41ba-483f-a3ff-49fdb57b9c38",
    }
    body.update(extra)
    return body


def form(request):
    return {k: v[0] for k, v in parse_qs(request.body).items()}


@pytest.fixture
def oauth():
    return SageOAuth(
        "my-client-id",
        CLIENT_SECRET,
        REDIRECT,
        authorize_url=AUTH_URL,
        token_url=TOKEN_URL,
        revoke_url=REVOKE_URL,
        clock=lambda: NOW,
    )


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_authorization_url_carries_all_parameters(oauth):
    url = oauth.authorization_url("state-123", country="GB", locale="en-GB")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTH_URL
    query = parse_qs(parts.query)
    assert query == {
        "filter": ["apiv3.1"],
        "response_type": ["code"],
        "client_id": ["my-client-id"],
        "redirect_uri": [REDIRECT],
        "scope": ["full_access"],
        "state": ["state-123"],
        "country": ["gb"],
        "locale": ["en-GB"],
    }
    assert CLIENT_SECRET not in url


def test_authorization_url_without_country_and_state_required(oauth):
    query = parse_qs(urlsplit(oauth.authorization_url("s")).query)
    assert "country" not in query and "locale" not in query
    assert query["filter"] == ["apiv3.1"]
    with pytest.raises(ValueError):
        oauth.authorization_url("")


def test_readonly_scope():
    o = SageOAuth("c", "s", REDIRECT, scope="readonly")
    assert parse_qs(urlsplit(o.authorization_url("x")).query)["scope"] == ["readonly"]


def test_code_from_callback_checks_state(oauth):
    cb = REDIRECT + "?code=GB%2F12abc&country=GB&state=st-1"
    assert oauth.code_from_callback(cb, "st-1") == ("GB/12abc", "GB")
    with pytest.raises(SageAuthError):
        oauth.code_from_callback(cb, "other-state")
    with pytest.raises(SageAuthError, match="access_denied"):
        oauth.code_from_callback(REDIRECT + "?error=access_denied&state=st-1", "st-1")


@pytest.mark.parametrize("code", ["GB/12abc", "GB%2F12abc"])
def test_exchange_code(oauth, rsps, code):
    rsps.add(responses.POST, TOKEN_URL, json=token_body())
    token = oauth.exchange_code(code)
    sent = form(rsps.calls[0].request)
    assert sent == {
        "grant_type": "authorization_code",
        "code": "GB/12abc",
        "redirect_uri": REDIRECT,
        "client_id": "my-client-id",
        "client_secret": CLIENT_SECRET,
    }
    assert rsps.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token == {
        "access_token": "ACCESS-1-secret",
        "refresh_token": "REFRESH-1-secret",
        "token_type": "bearer",
        "expires_at": int(NOW) + 300,
        "refresh_token_expires_at": int(NOW) + 2678400,
        "scope": "full_access",
        "requested_by_id": "c3c32d1c-41ba-483f-a3ff-49fdb57b9c38",
    }


def test_exchange_code_expired_maps_to_reauthorization(oauth, rsps):
    rsps.add(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "code expired"},
    )
    with pytest.raises(SageReauthorizationRequired) as info:
        oauth.exchange_code("GB/old")
    assert info.value.status == 400
    assert info.value.data_codes == ["invalid_grant"]


def test_refresh_returns_rotated_pair(oauth, rsps):
    rsps.add(
        responses.POST,
        TOKEN_URL,
        json=token_body(access="ACCESS-2-secret", refresh="REFRESH-2-secret"),
    )
    token = oauth.refresh("REFRESH-1-secret")
    assert token["access_token"] == "ACCESS-2-secret"
    assert token["refresh_token"] == "REFRESH-2-secret"
    assert token["expires_at"] == int(NOW) + 300
    assert token["refresh_token_expires_at"] == int(NOW) + 2678400
    sent = form(rsps.calls[0].request)
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"] == "REFRESH-1-secret"
    assert sent["client_id"] == "my-client-id"
    assert sent["client_secret"] == CLIENT_SECRET


def test_refresh_invalid_grant_requires_reauthorization(oauth, rsps):
    rsps.add(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "refresh token revoked"},
        headers={"x-request-id": "rid-9"},
    )
    with pytest.raises(SageReauthorizationRequired) as info:
        oauth.refresh("REFRESH-1-secret")
    err = info.value
    assert isinstance(err, SageAuthError)  # reauthorization is an auth error
    assert err.request_id == "rid-9"
    assert "REFRESH-1-secret" not in str(err) and CLIENT_SECRET not in str(err)


def test_refresh_invalid_client_is_auth_error_not_reauth(oauth, rsps):
    rsps.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_client"})
    with pytest.raises(SageAuthError) as info:
        oauth.refresh("REFRESH-1-secret")
    assert not isinstance(info.value, SageReauthorizationRequired)


def test_refresh_server_error(oauth, rsps):
    rsps.add(responses.POST, TOKEN_URL, status=503, body="<html>down</html>")
    with pytest.raises(SageServerError) as info:
        oauth.refresh("REFRESH-1-secret")
    assert info.value.maybe_sent is True


def test_refresh_network_error(oauth, rsps):
    rsps.add(responses.POST, TOKEN_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(SageConnectionError) as info:
        oauth.refresh("REFRESH-1-secret")
    assert info.value.maybe_sent is True  # the token may have rotated on Sage's side
    rsps.replace(responses.POST, TOKEN_URL, body=requests.exceptions.ConnectTimeout("no route"))
    with pytest.raises(SageConnectionError) as info:
        oauth.refresh("REFRESH-1-secret")
    assert info.value.maybe_sent is False


def test_refresh_without_token(oauth):
    with pytest.raises(SageReauthorizationRequired):
        oauth.refresh(None)


def test_revoke(oauth, rsps):
    rsps.add(responses.POST, REVOKE_URL, json={"success": "ok"})
    oauth.revoke("REFRESH-1-secret")
    assert form(rsps.calls[0].request) == {
        "client_id": "my-client-id",
        "client_secret": CLIENT_SECRET,
        "token": "REFRESH-1-secret",
    }
    assert "Authorization" not in rsps.calls[0].request.headers


def test_revoke_error_is_mapped(oauth, rsps):
    rsps.add(responses.POST, REVOKE_URL, status=400, json={"error": "invalid_client"})
    with pytest.raises(SageAuthError):
        oauth.revoke("REFRESH-1-secret")


def test_no_token_or_secret_in_logs(oauth, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.POST, TOKEN_URL, json=token_body())
    rsps.add(
        responses.POST,
        TOKEN_URL,
        json=token_body(access="ACCESS-2-secret", refresh="REFRESH-2-secret"),
    )
    rsps.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    oauth.exchange_code("GB/CODE-secret")
    oauth.refresh("REFRESH-1-secret")
    with pytest.raises(SageReauthorizationRequired) as info:
        oauth.refresh("REFRESH-2-secret")
    assert caplog.records, "the OAuth calls should log something (status, path)"
    text = caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    for secret in (
        "ACCESS-1-secret",
        "REFRESH-1-secret",
        "ACCESS-2-secret",
        "REFRESH-2-secret",
        CLIENT_SECRET,
        "CODE-secret",
    ):
        assert secret not in text
        assert secret not in str(info.value) and secret not in repr(info.value)
    assert "/token" in caplog.text
