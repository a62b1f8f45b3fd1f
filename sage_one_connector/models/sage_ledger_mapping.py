from odoo import _, api, fields, models
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
                    _("The Sage ledger must belong to the same Sage business as the mapping.")
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
