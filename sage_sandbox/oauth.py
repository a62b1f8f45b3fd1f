"""OAuth 2.0 side of the sandbox: authorize page, codes, token and revoke endpoints.

Mirrors Sage's authorization-code flow (see README.md): codes are ``GB/<random>``,
single-use and valid ``code_ttl`` seconds; refresh tokens rotate (the previous one is
rejected with ``invalid_grant`` at once); PKCE (``S256``/``plain``) is honoured when the
authorize request carried a ``code_challenge``.

All functions expect the caller to hold the sandbox lock.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import secrets
from urllib.parse import urlencode

from .store import State

SCOPES = ("full_access", "readonly")
REFRESH_TOKEN_TTL = 2678400  # 31 days, as Sage


class OAuthError(Exception):
    """Token-endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


class AuthorizePageError(Exception):
    """Unknown client or unregistered redirect_uri: a 400 page, never a redirect."""


def with_query(url: str, params: dict) -> str:
    params = {k: v for k, v in params.items() if v is not None}
    return url + ("&" if "?" in url else "?") + urlencode(params)


def check_client_redirect(state: State, client_id: str | None, redirect_uri: str | None) -> dict:
    app = state.apps.get(client_id or "")
    if app is None:
        raise AuthorizePageError("Unknown client_id.")
    if not redirect_uri or redirect_uri not in app["redirect_uris"]:
        raise AuthorizePageError("The redirect_uri is not registered for this application "
                                 "(matching is exact and case sensitive).")
    return app


def authenticate_client(state: State, client_id: str | None, client_secret: str | None) -> dict:
    app = state.apps.get(client_id or "")
    if app is None or not secrets.compare_digest(str(client_secret or ""), app["client_secret"]):
        raise OAuthError(401, "invalid_client", "Client authentication failed.")
    return app


def issue_code(state: State, client_id: str, redirect_uri: str, user_id: str, scope: str,
               country: str, code_ttl: float, code_challenge: str | None = None,
               code_challenge_method: str | None = None) -> str:
    code = f"{country}/{secrets.token_urlsafe(24)}"
    state.codes[code] = {
        "client_id": client_id, "redirect_uri": redirect_uri, "user_id": user_id,
        "scope": scope, "country": country, "used": False,
        "expires_at": state.now() + dt.timedelta(seconds=code_ttl),
        "code_challenge": code_challenge, "code_challenge_method": code_challenge_method or "plain",
    }
    return code


def issue_tokens(state: State, client_id: str, user_id: str, scope: str,
                 access_token_ttl: int) -> dict:
    now = state.now()
    access = secrets.token_urlsafe(48)
    refresh = secrets.token_urlsafe(48)
    state.refresh_tokens[refresh] = {
        "client_id": client_id, "user_id": user_id, "scope": scope, "active": True,
        "expires_at": now + dt.timedelta(seconds=REFRESH_TOKEN_TTL), "access_tokens": [access],
    }
    state.access_tokens[access] = {
        "client_id": client_id, "user_id": user_id, "scope": scope, "revoked": False,
        "expires_at": now + dt.timedelta(seconds=access_token_ttl),
    }
    return {
        "access_token": access, "scope": scope, "token_type": "bearer",
        "expires_in": int(access_token_ttl), "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TOKEN_TTL, "requested_by_id": user_id,
    }


def _pkce_ok(code: dict, verifier: str | None) -> bool:
    challenge = code.get("code_challenge")
    if not challenge:
        return True
    if not verifier:
        return False
    if code["code_challenge_method"] == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return secrets.compare_digest(computed, challenge)


def token_endpoint(state: State, form: dict, basic: tuple[str, str] | None,
                   access_token_ttl: int) -> dict:
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    if basic:
        client_id, client_secret = basic
    app = authenticate_client(state, client_id, client_secret)
    grant = form.get("grant_type")
    now = state.now()
    if grant == "authorization_code":
        code = state.codes.get(form.get("code") or "")
        if code is None or code["client_id"] != app["client_id"]:
            raise OAuthError(400, "invalid_grant", "The authorization code is invalid.")
        if code["used"]:
            raise OAuthError(400, "invalid_grant", "The authorization code has already been used.")
        code["used"] = True
        if code["expires_at"] < now:
            raise OAuthError(400, "invalid_grant", "The authorization code has expired.")
        if form.get("redirect_uri") != code["redirect_uri"]:
            raise OAuthError(400, "invalid_grant", "The redirect_uri does not match.")
        if not _pkce_ok(code, form.get("code_verifier")):
            raise OAuthError(400, "invalid_grant", "The code_verifier does not match.")
        return issue_tokens(state, app["client_id"], code["user_id"], code["scope"],
                            access_token_ttl)
    if grant == "refresh_token":
        token = form.get("refresh_token") or ""
        rec = state.refresh_tokens.get(token)
        if rec is None or rec["client_id"] != app["client_id"]:
            raise OAuthError(400, "invalid_grant", "The refresh token is invalid.")
        if not rec["active"]:
            raise OAuthError(400, "invalid_grant",
                             "The refresh token has already been used or was revoked.")
        if rec["expires_at"] < now:
            raise OAuthError(400, "invalid_grant", "The refresh token has expired.")
        if rec["user_id"] not in state.users:
            raise OAuthError(400, "invalid_grant", "The user no longer exists.")
        rec["active"] = False
        return issue_tokens(state, app["client_id"], rec["user_id"], rec["scope"],
                            access_token_ttl)
    raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported.")


def revoke_endpoint(state: State, form: dict, basic: tuple[str, str] | None) -> dict:
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    if basic:
        client_id, client_secret = basic
    app = authenticate_client(state, client_id, client_secret)
    token = form.get("token") or ""
    rec = state.refresh_tokens.get(token)
    if rec is not None and rec["client_id"] == app["client_id"]:
        rec["active"] = False
        for access in rec["access_tokens"]:
            if access in state.access_tokens:
                state.access_tokens[access]["revoked"] = True
    access_rec = state.access_tokens.get(token)
    if access_rec is not None and access_rec["client_id"] == app["client_id"]:
        access_rec["revoked"] = True
    return {"success": "ok"}


def authorize_page(params: dict, user: dict, action: str) -> str:
    """The consent page: signed-in user, app, Allow / Deny (form POST)."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items() if v is not None and k != "decision")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sage Accounting (sandbox) - Authorise</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}
button{{font-size:1.1em;padding:.4em 1.4em;margin-right:1em}}</style></head>
<body>
<h1>Sage Accounting sandbox</h1>
<p>Signed in as <strong>{html.escape(user['displayed_as'])}</strong>
(<span id="email">{html.escape(user['email'])}</span>).</p>
<p>The application <strong>{html.escape(params.get('client_id') or '')}</strong> asks for
<strong>{html.escape(params.get('scope') or 'full_access')}</strong> access to your Sage
Accounting data.</p>
<form method="post" action="{html.escape(action)}">{hidden}
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>"""


def error_page(message: str) -> str:
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sage Accounting (sandbox) - Error</title></head>
<body><h1>Authorisation error</h1><p id="error">{html.escape(message)}</p></body></html>"""
