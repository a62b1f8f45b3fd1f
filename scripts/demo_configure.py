"""Point the demo company's Sage connection at a running sandbox and connect it.

Usage: python3 scripts/demo_configure.py <odoo options incl. -d DB> \
           --sandbox-url http://127.0.0.1:8090 --odoo-url http://localhost:8069

Uses the sandbox's admin route to obtain tokens for the demo user (what the
OAuth dance would give), so the demo is usable at once; Disconnect / Connect in
Settings runs the real flow against the same sandbox.
"""

import argparse
import sys
import time

import requests

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

CLIENT_ID = "demo"
CLIENT_SECRET = "demo-secret"  # the sandbox's demo app, not a real credential
DEMO_BUSINESS = "Demo Trading Ltd"


def sandbox_tokens(sandbox_url):
    response = requests.post(
        f"{sandbox_url}/_sandbox/tokens", json={"client_id": CLIENT_ID}, timeout=10
    )
    response.raise_for_status()
    token = response.json()
    now = time.time()
    token["expires_at"] = now + token["expires_in"]
    token["refresh_token_expires_at"] = now + token["refresh_token_expires_in"]
    return token


def closest_rate(rates, percentage):
    return min(rates, key=lambda rate: abs(rate.percentage - percentage)) if rates else rates


def configure(env, sandbox_url, odoo_url):
    env["ir.config_parameter"].set_param("web.base.url", odoo_url)
    env["ir.config_parameter"].set_param("web.base.url.freeze", "True")
    company = env.ref("base.main_company")
    connection = env["sage.connection"].search([("company_id", "=", company.id)], limit=1)
    values = {
        "company_id": company.id,
        "api_url": f"{sandbox_url}/v3.1",
        "authorize_url": f"{sandbox_url}/oauth2/auth/central",
        "token_url": f"{sandbox_url}/token",
        "revoke_url": f"{sandbox_url}/revoke",
        "app_url": f"{sandbox_url}/app",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if connection:
        connection.write(values)
    else:
        connection = env["sage.connection"].create(values)
    connection._sage_store_token(sandbox_tokens(sandbox_url))
    connection.write({"state": "connected", "business_id": False})
    businesses = {
        business["displayed_as"]: business["id"]
        for business in connection._sage_client().list_businesses()
    }
    connection.write({"business_id": businesses[DEMO_BUSINESS], "business_name": DEMO_BUSINESS})
    connection._sage_sync_reference_data()
    ledgers = connection.ledger_account_ids
    connection.write(
        {
            "default_ledger_id": ledgers.filtered(lambda lg: lg.nominal_code == "4000").id,
            "bad_debt_ledger_id": ledgers.filtered(lambda lg: lg.nominal_code == "8100").id,
        }
    )
    rates = connection.tax_rate_ids
    for tax in env["account.tax"].search(
        [("company_id", "=", company.id), ("type_tax_use", "=", "sale")]
    ):
        tax.sage_tax_rate_id = closest_rate(rates, tax.amount)
    print(f"Connected {company.name} to the sandbox business {DEMO_BUSINESS}.")


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox-url", required=True)
    parser.add_argument("--odoo-url", required=True)
    args, odoo_args = parser.parse_known_args(argv)
    odoo.tools.config.parse_config(odoo_args)
    with Registry(odoo.tools.config["db_name"]).cursor() as cr:
        configure(api.Environment(cr, SUPERUSER_ID, {}), args.sandbox_url, args.odoo_url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
