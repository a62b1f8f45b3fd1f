"""Pure tests (no Odoo) for sage_api.connection_rules."""

from datetime import datetime, timedelta

import pytest

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import connection_rules as rules

NOW = datetime(2026, 1, 15, 12, 0, 0)


@pytest.mark.parametrize(
    ("prefix", "suffix", "expected"),
    [
        (None, None, None),
        ("", "", None),
        ("OD-", "-UK", None),
        ("ABCDEF", "", None),
        ("ABCDEF", "1234", None),
        ("ABCDEFG", "", ("prefix_too_long", 6)),
        ("ABCDEF", "12345", ("affixes_too_long", 10)),
        ("A", "123456789X", ("affixes_too_long", 10)),
        ("A B", "", ("whitespace", 0)),
        ("", "x\t", ("whitespace", 0)),
    ],
)
def test_numbering_problem(prefix, suffix, expected):
    assert rules.numbering_problem(prefix, suffix) == expected


def test_numbering_leaves_room_for_odoo_numbers_in_the_reference():
    longest_ok = "P" * rules.MAX_NUMBER_PREFIX_LENGTH + "S" * (
        rules.MAX_AFFIXES_LENGTH - rules.MAX_NUMBER_PREFIX_LENGTH
    )
    assert rules.numbering_problem(longest_ok[:6], longest_ok[6:]) is None
    assert rules.MAX_REFERENCE_LENGTH - len(longest_ok) >= len("INV/2026/00042")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.accounting.sage.com/v3.1", None),
        ("https://oauth.accounting.sage.com/token", None),
        ("http://127.0.0.1:8123/v3.1", None),
        ("http://localhost:8123/token", None),
        ("http://[::1]:8123/token", None),
        ("http://sage.example.com/token", "not_https"),
        ("http://10.0.0.5/token", "not_https"),
        ("ftp://sage.example.com/token", "not_absolute"),
        ("/token", "not_absolute"),
        ("", "not_absolute"),
        (None, "not_absolute"),
    ],
)
def test_endpoint_problem(url, expected):
    assert rules.endpoint_problem(url) == expected


def test_loopback_is_not_fooled_by_lookalike_hosts():
    assert not rules.is_loopback_url("http://127.0.0.1.evil.example/token")
    assert not rules.is_loopback_url("http://localhost.evil.example/token")
    assert rules.is_loopback_url("http://127.0.0.2/token")


def test_active_subscriptions():
    business = {
        "subscriptions": [
            {"id": "ACCOUNTING", "displayed_as": "Accounting Plus", "active": True},
            {"id": "START", "displayed_as": "Accounting Start", "active": False},
        ]
    }
    assert rules.active_subscriptions(business) == ["Accounting Plus"]
    assert rules.active_subscriptions({"subscriptions": [{"id": "X", "active": "yes"}]}) == []
    assert rules.active_subscriptions({}) == []
    assert rules.active_subscriptions(None) == []


def test_business_choice_values():
    item = {
        "id": "b1",
        "name": "North Ltd",
        "country": {"id": "gb", "displayed_as": "United Kingdom (GB)"},
        "subscriptions": [{"id": "ACCOUNTING", "displayed_as": "Accounting Plus"}],
    }
    assert rules.business_choice_values(item) == {
        "sage_business_id": "b1",
        "name": "North Ltd",
        "country_code": "GB",
        "subscription": "Accounting Plus",
    }
    bare = rules.business_choice_values({"id": "b2", "displayed_as": "Bare"})
    assert bare == {
        "sage_business_id": "b2",
        "name": "Bare",
        "country_code": False,
        "subscription": False,
    }


@pytest.mark.parametrize(
    ("remaining", "due"),
    [
        (timedelta(days=31), False),
        (timedelta(days=24, seconds=1), False),
        (timedelta(days=23, hours=23), True),
        (timedelta(days=1), True),
        (timedelta(days=-1), True),
    ],
)
def test_refresh_due(remaining, due):
    assert rules.refresh_due(NOW + remaining, NOW) is due


def test_refresh_due_without_known_expiry():
    assert rules.refresh_due(None, NOW) is True
    assert rules.refresh_due(False, NOW) is True


def test_keep_alive_window_survives_a_week_of_missed_runs():
    # Refreshed at the latest once 24 days remain: 7 missed daily runs still
    # leave more than two weeks before Sage's 31-day limit.
    assert rules.KEEP_ALIVE_REMAINING - timedelta(days=7) > timedelta(days=14)
