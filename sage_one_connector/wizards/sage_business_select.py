from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..sage_api import connection_rules


class SageBusinessSelect(models.TransientModel):
    """After Connect: the Sage user has several businesses, pick one."""

    _name = "sage.business.select"
    _description = "Choose the Sage business"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="connection_id.company_id")
    line_ids = fields.One2many("sage.business.select.line", "wizard_id", readonly=True)

    @api.model
    def _sage_open_for(self, connection, businesses):
        """A wizard listing `businesses` (items of GET /businesses)."""
        return self.create(
            {
                "connection_id": connection.id,
                "line_ids": [
                    Command.create(connection_rules.business_choice_values(item))
                    for item in businesses
                ],
            }
        )

    def action_sage_cancel(self):
        self.ensure_one()
        return self.connection_id._sage_form_action()


class SageBusinessSelectLine(models.TransientModel):
    _name = "sage.business.select.line"
    _description = "Sage business offered by the business choice"
    _order = "name"

    wizard_id = fields.Many2one("sage.business.select", required=True, ondelete="cascade")
    sage_business_id = fields.Char("Sage business ID", required=True, readonly=True)
    name = fields.Char(required=True, readonly=True)
    country_code = fields.Char("Country", readonly=True)
    subscription = fields.Char(readonly=True)
    is_current = fields.Boolean(
        "Current business", compute="_compute_is_current", help="The business connected so far."
    )

    @api.depends("sage_business_id", "wizard_id.connection_id.business_id")
    def _compute_is_current(self):
        for line in self:
            line.is_current = line.sage_business_id == line.wizard_id.connection_id.business_id

    def action_sage_choose(self):
        """Button: connect the company to this business."""
        self.ensure_one()
        connection = self.wizard_id.connection_id
        connection._sage_check_system_user()
        connection.check_access("write")
        if not connection.sudo().refresh_token:
            raise UserError(
                self.env._("This choice has expired: click Connect again in the settings.")
            )
        connection._sage_finish_connect(self.sage_business_id)
        return connection._sage_form_action()
