"""Pure tests of the reference-data mapping (Sage objects -> Odoo values)."""

from decimal import Decimal

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import mapping


def test_ledger_account_values_keep_the_nominal_code_as_text():
    values = mapping.ledger_account_values(
        {"id": "L1", "name": "Sales Type A", "nominal_code": 4000}
    )
    assert values == {"sage_id": "L1", "name": "Sales Type A", "nominal_code": "4000"}


def test_ledger_account_without_name_or_code_falls_back_to_displayed_as():
    values = mapping.ledger_account_values({"id": "L2", "displayed_as": "Misc"})
    assert values == {"sage_id": "L2", "name": "Misc", "nominal_code": False}


def test_tax_rate_percentage_from_a_numeric_string():
    values = mapping.tax_rate_values(
        {"id": "GB_STANDARD", "name": "Standard", "percentage": "20.0"}
    )
    assert values["percentage"] == float(Decimal("20.0"))
    assert values["name"] == "Standard"


def test_hidden_tax_rates_are_not_offered():
    rates = [{"id": "A"}, {"id": "B", "is_visible": False}, {"id": "C", "is_visible": True}]
    assert [rate["id"] for rate in mapping.visible_tax_rates(rates)] == ["A", "C"]


def test_financial_settings_give_business_currency_and_multi_currency():
    assert mapping.financial_settings_values(
        {"base_currency": {"id": "GBP"}, "multi_currency_enabled": True}
    ) == {"business_currency": "GBP", "multi_currency_enabled": True}
    assert mapping.financial_settings_values({}) == {
        "business_currency": False,
        "multi_currency_enabled": False,
    }
