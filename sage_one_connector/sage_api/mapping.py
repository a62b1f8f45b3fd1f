"""Pure functions that turn Sage objects into Odoo values and back.

No Odoo imports: callers pass plain values and get plain values back, so every
rule here is tested without a database (tests/test_mapping*.py).
"""

from .client import to_decimal


def ledger_account_values(item):
    """Values of a `sage.ledger.account` from a Sage ledger account."""
    nominal_code = item.get("nominal_code")
    return {
        "sage_id": item["id"],
        "name": item.get("name") or item.get("display_name") or item.get("displayed_as") or "",
        "nominal_code": str(nominal_code) if nominal_code not in (None, "") else False,
    }


def tax_rate_values(item):
    """Values of a `sage.tax.rate` from a Sage tax rate."""
    percentage = to_decimal(item.get("percentage"), default=0)
    return {
        "sage_id": item["id"],
        "name": item.get("name") or item.get("displayed_as") or item["id"],
        "percentage": float(percentage),
    }


def currency_values(item):
    """Values of a `sage.currency` from a Sage currency."""
    return {
        "sage_id": item["id"],
        "name": item.get("displayed_as") or item.get("name") or item["id"],
    }


def visible_tax_rates(items):
    """Tax rates a user may pick: Sage hides some (`is_visible` false)."""
    return [item for item in items if item.get("is_visible", True) is not False]


def financial_settings_values(settings):
    """Connection values from Sage's financial settings (business currency, multi-currency)."""
    return {
        "business_currency": (settings.get("base_currency") or {}).get("id") or False,
        "multi_currency_enabled": bool(settings.get("multi_currency_enabled")),
    }
