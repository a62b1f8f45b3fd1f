"""Fill the template database of the system tests (run in its own process).

Usage: python3 system_tests/odoo_prepare.py <odoo db options> --invoices 200 --customers 20

Creates, in the main company: a 20 % sale tax (mapped to Sage later, per test),
customers with email addresses, and posted customer invoices dated today
alternating between two payment terms. Each system test copies the database
(``createdb -T``) and connects its copy to its own Sage sandbox.
"""

import argparse
import sys

import odoo
from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import Registry

TAX_NAME = "VAT 20% (system tests)"


def prepare(env, invoice_count, customer_count):
    company = env.ref("base.main_company")
    env["ir.config_parameter"].set_param("web.base.url.freeze", "True")
    tax = env["account.tax"].create(
        {
            "name": TAX_NAME,
            "amount": 20,
            "amount_type": "percent",
            "type_tax_use": "sale",
            "company_id": company.id,
        }
    )
    customers = env["res.partner"].create(
        [
            {
                "name": f"System Customer {number:02d}",
                "email": f"accounts{number:02d}@system-customer.example",
                "is_company": True,
            }
            for number in range(1, customer_count + 1)
        ]
    )
    terms = [
        env.ref("account.account_payment_term_immediate"),
        env.ref("account.account_payment_term_30days"),
    ]
    today = fields.Date.context_today(env["account.move"])
    moves = env["account.move"].create(
        [
            {
                "move_type": "out_invoice",
                "partner_id": customers[number % customer_count].id,
                "invoice_date": today,
                "invoice_payment_term_id": terms[number % len(terms)].id,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": f"Service {number + 1}",
                            "quantity": 1 + number % 3,
                            "price_unit": 100.0 + number,
                            "tax_ids": [Command.set(tax.ids)],
                        }
                    )
                ],
            }
            for number in range(invoice_count)
        ]
    )
    moves.action_post()
    print(f"prepared: {len(customers)} customers, {len(moves)} posted invoices")


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, required=True)
    parser.add_argument("--customers", type=int, required=True)
    args, odoo_args = parser.parse_known_args(argv)
    odoo.tools.config.parse_config(odoo_args)
    with Registry(odoo.tools.config["db_name"]).cursor() as cr:
        prepare(api.Environment(cr, SUPERUSER_ID, {}), args.invoices, args.customers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
