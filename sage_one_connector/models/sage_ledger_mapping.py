from odoo import api, fields, models
from odoo.exceptions import ValidationError


class SageLedgerMapping(models.Model):
    """Send the lines of one product, or of one income account, to a given ledger.

    A product mapping wins over an income-account mapping, which wins over the
    connection's default revenue ledger.
    """

    _name = "sage.ledger.mapping"
    _description = "Sage ledger mapping"
    _order = "product_id, account_id"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    account_id = fields.Many2one(
        "account.account",
        "Income account",
        ondelete="cascade",
        domain="[('account_type', 'in', ('income', 'income_other'))]",
    )
    product_id = fields.Many2one("product.product", ondelete="cascade")
    ledger_id = fields.Many2one(
        "sage.ledger.account",
        "Sage ledger",
        required=True,
        ondelete="restrict",
        domain="[('connection_id', '=', connection_id)]",
    )

    _sql_constraints = [
        (
            "account_uniq",
            "UNIQUE(connection_id, account_id)",
            "This income account is already mapped to a Sage ledger.",
        ),
        (
            "product_uniq",
            "UNIQUE(connection_id, product_id)",
            "This product is already mapped to a Sage ledger.",
        ),
        (
            "account_or_product",
            "CHECK((account_id IS NULL) <> (product_id IS NULL))",
            "A ledger mapping applies to either an income account or a product.",
        ),
    ]

    @api.constrains("ledger_id", "connection_id")
    def _check_ledger_connection(self):
        for mapping in self:
            if mapping.ledger_id.connection_id != mapping.connection_id:
                raise ValidationError(
                    self.env._(
                        "The Sage ledger must belong to the same Sage business as the mapping."
                    )
                )
            if not mapping.ledger_id.active:
                raise ValidationError(
                    self.env._(
                        "The Sage ledger %(ledger)s is no longer visible in sales in Sage: "
                        "choose another one.",
                        ledger=mapping.ledger_id.display_name,
                    )
                )

    @api.constrains("account_id", "product_id", "connection_id")
    def _check_same_company(self):
        # sudo: a record of another company may not even be readable by the user.
        for mapping in self.sudo():
            company = mapping.connection_id.company_id
            if mapping.account_id and company not in mapping.account_id.company_ids:
                raise ValidationError(
                    self.env._(
                        "The income account %(account)s is not used by %(company)s.",
                        account=mapping.account_id.display_name,
                        company=company.name,
                    )
                )
            product_company = mapping.product_id.company_id
            if product_company and product_company != company:
                raise ValidationError(
                    self.env._(
                        "The product %(product)s belongs to another company.",
                        product=mapping.product_id.display_name,
                    )
                )


class AccountTax(models.Model):
    _inherit = "account.tax"

    sage_tax_rate_id = fields.Many2one(
        "sage.tax.rate",
        "Sage tax rate",
        ondelete="restrict",
        domain="[('company_id', '=', company_id)]",
        help="The Sage tax rate that lines with this tax are sent with.",
    )

    @api.constrains("sage_tax_rate_id", "company_id", "type_tax_use")
    def _check_sage_tax_rate(self):
        for tax in self.filtered("sage_tax_rate_id"):
            rate = tax.sage_tax_rate_id
            if tax.type_tax_use != "sale":
                raise ValidationError(
                    self.env._(
                        "Only sales taxes are sent to Sage: %(tax)s cannot have a Sage tax rate.",
                        tax=tax.display_name,
                    )
                )
            if rate.company_id != tax.company_id:
                raise ValidationError(
                    self.env._(
                        "The Sage tax rate %(rate)s belongs to the Sage business of another "
                        "company than the tax %(tax)s.",
                        rate=rate.display_name,
                        tax=tax.display_name,
                    )
                )
