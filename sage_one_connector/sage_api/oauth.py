"""OAuth 2.0 (authorization-code grant) for Sage Business Cloud Accounting v3.1.

Built on requests-oauthlib's ``OAuth2Session``. Pure Python, no Odoo imports.

Token dicts returned by :meth:`SageOAuth.exchange_code` and
:meth:`SageOAuth.refresh` have these keys::

    access_token, refresh_token, token_type,
    expires_at               # epoch seconds (int) when the access token expires
    refresh_token_expires_at # epoch seconds (int) or None
    scope                    # str, e.g. "full_access"
    requested_by_id          # Sage user id of the authorizing user, or None

Sage rotates refresh tokens: every refresh returns a NEW pair and the old
refresh token must be treated as spent. Persist the returned pair at once.

Nothing here retries a token call: a refresh whose response was lost may have
rotated the token already, and an authorization code is single use.

Tokens, secrets and codes are never logged. requests-oauthlib itself logs
request bodies and token responses at DEBUG level; importing this module adds
a filter that drops those DEBUG records.

Local http:// endpoints (a test sandbox) need ``OAUTHLIB_INSECURE_TRANSPORT=1``
in the environment, as for any oauthlib application.
"""

import hmac
import logging
import time
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from . import _transport
from .exceptions import (
    SageAuthError,
    SageConnectionError,
    SageError,
    SageRateLimitError,
    SageReauthorizationRequired,
    SageServerError,
    parse_error_details,
)

__all__ = ["SageOAuth", "DEFAULT_AUTHORIZE_URL", "DEFAULT_TOKEN_URL", "DEFAULT_REVOKE_URL"]

_logger = logging.getLogger(__name__)

DEFAULT_AUTHORIZE_URL = "https://www.sageone.com/oauth2/auth/central"
DEFAULT_TOKEN_URL = "https://oauth.accounting.sage.com/token"
DEFAULT_REVOKE_URL = "https://oauth.accounting.sage.com/revoke"


class _DropDebugRecords(logging.Filter):
    """requests-oauthlib logs token request bodies and responses at DEBUG."""

    def filter(self, record):
        return record.levelno > logging.DEBUG


def _install_log_filter():
    lib_logger = logging.getLogger("requests_oauthlib.oauth2_session")
    if not any(isinstance(f, _DropDebugRecords) for f in lib_logger.filters):
        lib_logger.addFilter(_DropDebugRecords())


_install_log_filter()


class SageOAuth:
    """Sage OAuth endpoints: authorization URL, code exchange, refresh, revoke."""

    def __init__(
        self,
        client_id,
        client_secret,
        redirect_uri,
        *,
        authorize_url=DEFAULT_AUTHORIZE_URL,
        token_url=DEFAULT_TOKEN_URL,
        revoke_url=DEFAULT_REVOKE_URL,
        scope="full_access",
        timeout=20,
        session=None,
        clock=time.time,
    ):
        """``session``: optional ``requests.Session`` whose adapters, proxies,
        ``verify``/``cert`` and ``trust_env`` settings are reused for the token
        calls (each call still runs in its own ``OAuth2Session`` so no token
        state is shared between threads). ``clock`` returns epoch seconds.
        """
        if not client_id:
            raise ValueError("client_id is required")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.scope = scope
        self.timeout = timeout
        self._transport_session = session
        self._clock = clock

    def __repr__(self):
        return f"SageOAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    # -- helpers -----------------------------------------------------------

    def _session(self, scope=None):
        oauth = OAuth2Session(
            self.client_id,
            redirect_uri=self.redirect_uri,
            scope=[scope] if scope else None,
        )
        base = self._transport_session
        if base is not None:
            oauth.adapters = base.adapters
            oauth.proxies = base.proxies
            oauth.verify = base.verify
            oauth.cert = base.cert
            oauth.trust_env = base.trust_env
        oauth.register_compliance_hook("access_token_response", self._check_response)
        oauth.register_compliance_hook("refresh_token_response", self._check_response)
        return oauth

    @staticmethod
    def _check_response(response):
        """Turn any non-2xx token-endpoint response into a Sage exception."""
        status = response.status_code
        rid = response.headers.get("x-request-id")
        _logger.info(
            "Sage OAuth POST %s -> %s (x-request-id=%s)",
            urlsplit(response.url or "").path,
            status,
            rid,
        )
        if 200 <= status < 300:
            return response
        raise _token_error(response, urlsplit(response.url or "").path)

    def _call(self, what, func):
        try:
            return func()
        except SageError:
            raise
        except requests.exceptions.RequestException as exc:
            raise SageConnectionError(
                f"Sage OAuth {what} failed: {_transport.describe_network_error(exc)}",
                method="POST",
                path=urlsplit(self.token_url).path,
                maybe_sent=_transport.maybe_sent(exc),
            ) from None
        except Warning as warning:
            # oauthlib raises Warning when the granted scope differs from the
            # requested one; the token is attached to the warning.
            token = getattr(warning, "token", None)
            if token is None:
                raise
            return token
        except OAuth2Error as exc:
            if exc.error == "invalid_grant":
                cls = SageReauthorizationRequired
            else:
                cls = SageAuthError
            raise cls(
                f"Sage OAuth {what} failed: {exc.error or type(exc).__name__}",
                status=exc.status_code,
                method="POST",
                path=urlsplit(self.token_url).path,
            ) from None

    def _normalize(self, token, sent_at):
        token = dict(token)
        access = token.get("access_token")
        if not access:
            raise SageAuthError("Sage token response carries no access_token")
        expires_in = token.get("expires_in")
        try:
            expires_at = int(sent_at + float(expires_in)) if expires_in is not None else None
        except (TypeError, ValueError):
            expires_at = None
        if expires_at is None and token.get("expires_at"):
            expires_at = int(float(token["expires_at"]))
        rt_in = token.get("refresh_token_expires_in")
        try:
            rt_expires_at = int(sent_at + float(rt_in)) if rt_in is not None else None
        except (TypeError, ValueError):
            rt_expires_at = None
        scope = token.get("scope")
        if isinstance(scope, (list, tuple, set)):
            scope = " ".join(scope)
        return {
            "access_token": access,
            "refresh_token": token.get("refresh_token"),
            "token_type": token.get("token_type") or "bearer",
            "expires_at": expires_at,
            "refresh_token_expires_at": rt_expires_at,
            "scope": scope or self.scope,
            "requested_by_id": token.get("requested_by_id"),
        }

    # -- public API --------------------------------------------------------

    def authorization_url(self, state, country=None, locale=None):
        """URL to send the user's browser to.

        Always carries ``filter=apiv3.1``, ``response_type=code``,
        ``client_id``, ``redirect_uri``, ``scope`` and ``state``; ``country``
        (``gb``/``ie``/``ca``) and ``locale`` (``en-GB``...) when given.
        """
        if not state:
            raise ValueError("state is required (and must be checked on the callback)")
        extra = {"filter": "apiv3.1"}
        if country:
            extra["country"] = country.lower()
        if locale:
            extra["locale"] = locale
        url, _state = self._session(self.scope).authorization_url(
            self.authorize_url, state=state, **extra
        )
        return url

    @staticmethod
    def code_from_callback(url, expected_state):
        """Extract the authorization code from the callback URL Sage redirected to.

        Checks ``state`` (constant-time) and Sage's ``error`` parameter.
        Returns ``(code, country)``; the code is URL-decoded (``GB/12abc...``).
        """
        query = parse_qs(urlsplit(url).query)
        error = (query.get("error") or [None])[0]
        if error:
            raise SageAuthError(f"Sage authorization failed: {error}", status=None)
        state = (query.get("state") or [""])[0]
        if not expected_state or not hmac.compare_digest(state, expected_state):
            raise SageAuthError("OAuth state mismatch on the Sage callback")
        code = (query.get("code") or [None])[0]
        if not code:
            raise SageAuthError("The Sage callback carries no authorization code")
        return code, (query.get("country") or [None])[0]

    def exchange_code(self, code):
        """Exchange an authorization code for a token pair (single use, 60 s).

        Sage's code looks like ``GB/12abc...``; a still URL-encoded code
        (``GB%2F12abc...``) is decoded first.
        """
        if not code:
            raise ValueError("code is required")
        if "%" in code:
            code = unquote(code)
        oauth = self._session()
        sent_at = self._clock()
        token = self._call(
            "code exchange",
            lambda: oauth.fetch_token(
                self.token_url,
                code=code,
                client_secret=self._client_secret,
                include_client_id=True,
                timeout=self.timeout,
            ),
        )
        return self._normalize(token, sent_at)

    def refresh(self, refresh_token):
        """Exchange a refresh token for a NEW token pair (Sage rotates both).

        Raises SageReauthorizationRequired on ``invalid_grant`` (expired,
        revoked or already used refresh token).
        """
        if not refresh_token:
            raise SageReauthorizationRequired("No Sage refresh token stored")
        oauth = self._session()
        sent_at = self._clock()
        token = self._call(
            "token refresh",
            lambda: oauth.refresh_token(
                self.token_url,
                refresh_token=refresh_token,
                client_id=self.client_id,
                client_secret=self._client_secret,
                timeout=self.timeout,
            ),
        )
        result = self._normalize(token, sent_at)
        if not result["refresh_token"] or result["refresh_token"] == refresh_token:
            # requests-oauthlib re-inserts the old refresh token when the
            # response has none; keep it but make the situation visible.
            _logger.warning("Sage token refresh returned no new refresh token")
        return result

    def revoke(self, refresh_token):
        """Revoke a refresh token (disconnect). Access tokens cannot be revoked."""
        if not refresh_token:
            return
        oauth = self._session()

        def _post():
            response = oauth.post(
                self.revoke_url,
                data={
                    "client_id": self.client_id,
                    "client_secret": self._client_secret,
                    "token": refresh_token,
                },
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                withhold_token=True,
            )
            return self._check_response(response)

        self._call("revoke", _post)


def _token_error(response, path):
    status = response.status_code
    rid = response.headers.get("x-request-id")
    details = parse_error_details(response.content)
    code = details[0].data_code if details else ""
    kwargs = {
        "status": status,
        "request_id": rid,
        "errors": details,
        "method": "POST",
        "path": path,
    }
    if not details and response.content:
        kwargs["body_excerpt"] = response.text
    if code == "invalid_grant":
        return SageReauthorizationRequired("Sage refused the grant", **kwargs)
    if code in ("invalid_client", "unauthorized_client") or status == 401:
        return SageAuthError("Sage refused the client credentials", **kwargs)
    if status == 429:
        return SageRateLimitError(**kwargs)
    if status >= 500:
        return SageServerError(maybe_sent=True, **kwargs)
    if status in (400, 403):
        return SageAuthError("Sage token endpoint error", **kwargs)
    return SageError("Unexpected Sage token endpoint response", **kwargs)
