"""Pure rules of connecting a company to Sage (no Odoo imports).

The Odoo models turn the codes returned here into translated messages; the
rules themselves are tested without a database (tests/test_connection_rules.py).
"""

import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

__all__ = [
    "MAX_AFFIXES_LENGTH",
    "MAX_DUE_DAYS",
    "MAX_NUMBER_PREFIX_LENGTH",
    "MAX_REFERENCE_LENGTH",
    "KEEP_ALIVE_REMAINING",
    "active_subscriptions",
    "business_choice_values",
    "endpoint_problem",
    "is_loopback_url",
    "numbering_problem",
    "refresh_due",
]

# Sage's `invoice_number_prefix` holds at most 6 characters and a document
# `reference` at most 25 (swagger.invoicing_sales.json). Prefix and suffix
# together leave at least 15 characters for Odoo's own number (INV/2026/00042).
MAX_NUMBER_PREFIX_LENGTH = 6
MAX_REFERENCE_LENGTH = 25
MAX_AFFIXES_LENGTH = 10
MAX_DUE_DAYS = 365

# Sage refresh tokens live 31 days and each refresh issues a new one. The
# daily keep-alive refreshes a connection once fewer than 24 days remain, that
# is after a week of silence: a week of missed cron runs still leaves margin.
KEEP_ALIVE_REMAINING = timedelta(days=24)


def numbering_problem(prefix, suffix):
    """Why a numbering prefix/suffix pair cannot be sent to Sage, or None.

    Returns ``(code, limit)`` with code ``"prefix_too_long"``,
    ``"affixes_too_long"`` or ``"whitespace"``.
    """
    prefix = prefix or ""
    suffix = suffix or ""
    if any(char.isspace() for char in prefix + suffix):
        return ("whitespace", 0)
    if len(prefix) > MAX_NUMBER_PREFIX_LENGTH:
        return ("prefix_too_long", MAX_NUMBER_PREFIX_LENGTH)
    if len(prefix) + len(suffix) > MAX_AFFIXES_LENGTH:
        return ("affixes_too_long", MAX_AFFIXES_LENGTH)
    return None


def is_loopback_url(url):
    """True for http(s) URLs on this machine (a local sandbox)."""
    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(url):
    """Why ``url`` cannot be a Sage endpoint, or None.

    Tokens travel to these URLs: they must use https, except on the loopback
    interface where the project's sandbox runs. Returns ``"not_absolute"`` or
    ``"not_https"``.
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "not_absolute"
    if parts.scheme != "https" and not is_loopback_url(url):
        return "not_https"
    return None


def active_subscriptions(business):
    """Names of the active subscriptions of a Sage business (GET /businesses/{id})."""
    names = []
    for subscription in (business or {}).get("subscriptions") or []:
        if subscription.get("active") is True:
            names.append(subscription.get("displayed_as") or subscription.get("id") or "")
    return names


def business_choice_values(item):
    """Values of one line of the business-choice wizard from a GET /businesses item."""
    country = item.get("country") or {}
    subscriptions = item.get("subscriptions") or []
    return {
        "sage_business_id": item["id"],
        "name": item.get("name") or item.get("displayed_as") or item["id"],
        "country_code": (country.get("id") or "").upper() or False,
        "subscription": ", ".join(s.get("displayed_as") or s.get("id") or "" for s in subscriptions)
        or False,
    }


def refresh_due(refresh_token_expires_at, now, remaining=KEEP_ALIVE_REMAINING):
    """True when the keep-alive cron must refresh a connection's tokens.

    An unknown expiry counts as due: refreshing is cheap, losing the
    connection is not.
    """
    if not refresh_token_expires_at:
        return True
    return refresh_token_expires_at - now < remaining
