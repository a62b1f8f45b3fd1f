from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    """The Sage block of Settings > Invoicing: one connection per company."""

    _inherit = "res.config.settings"

    sage_connection_id = fields.Many2one(
        "sage.connection", compute="_compute_sage_connection", string="Sage connection"
    )
    sage_connection_state = fields.Selection(related="sage_connection_id.state")
    sage_business_name = fields.Char(related="sage_connection_id.business_name")
    sage_last_reference_sync = fields.Datetime(related="sage_connection_id.last_reference_sync")
    sage_client_id = fields.Char("Sage client ID", groups="base.group_system")
    sage_client_secret = fields.Char("Sage client secret", groups="base.group_system")

    @api.depends("company_id")
    def _compute_sage_connection(self):
        for settings in self:
            settings.sage_connection_id = self.env["sage.connection"]._for_company(
                settings.company_id, raise_if_missing=False
            )

    @api.model
    def get_values(self):
        values = super().get_values()
        if self.env.user.has_group("base.group_system"):
            connection = self.env["sage.connection"]._for_company(
                self.env.company, raise_if_missing=False
            )
            values.update(
                sage_client_id=connection.client_id or False,
                sage_client_secret=connection.client_secret or False,
            )
        return values

    def set_values(self):
        super().set_values()
        if not self.env.user.has_group("base.group_system"):
            return
        connection = self.env["sage.connection"]._for_company(
            self.company_id, raise_if_missing=False
        )
        values = {
            "client_id": self.sage_client_id or False,
            "client_secret": self.sage_client_secret or False,
        }
        if connection:
            changed = {name: value for name, value in values.items() if connection[name] != value}
            if changed:
                connection.write(changed)
        elif any(values.values()):
            self.env["sage.connection"].sudo().create(dict(values, company_id=self.company_id.id))

    def _sage_connection(self):
        self.ensure_one()
        return self.env["sage.connection"]._for_company(self.company_id)

    def action_sage_connect(self):
        self.ensure_one()
        connection = self.env["sage.connection"]._sage_get_or_create(self.company_id)
        return connection.with_env(self.env).action_sage_connect()

    def action_sage_disconnect(self):
        return self._sage_connection().with_env(self.env).action_sage_disconnect()

    def action_sage_test_connection(self):
        return self._sage_connection().with_env(self.env).action_sage_test_connection()

    def action_sage_sync_reference_data(self):
        return self._sage_connection().with_env(self.env).action_sage_sync_reference_data()

    def action_sage_open_connection(self):
        connection = self.env["sage.connection"]._sage_get_or_create(self.company_id)
        return connection.with_env(self.env)._sage_form_action()

    def action_sage_open_ledger_mappings(self):
        return self._sage_connection().with_env(self.env).action_sage_open_ledger_mappings()

    def action_sage_open_tax_mapping(self):
        return self._sage_connection().with_env(self.env).action_sage_open_tax_mapping()

    def action_sage_open_ledger_accounts(self):
        return self._sage_connection().with_env(self.env).action_sage_open_ledger_accounts()
