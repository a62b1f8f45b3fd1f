from odoo import api, fields, models


class SageJobCardLine(models.Model):
    """One line of the job card of a CRM lead: what was supplied or done.

    The job card is the source of the customer invoice generated from the lead,
    one invoice line per job card line.
    """

    _name = "sage.job.card.line"
    _description = "Job card line"
    _order = "lead_id, sequence, id"

    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="lead_id.company_id", store=True)
    currency_id = fields.Many2one(related="lead_id.company_currency")
    sequence = fields.Integer(default=10)
    product_id = fields.Many2one(
        "product.product",
        required=True,
        ondelete="restrict",
        domain="[('sale_ok', '=', True), ('company_id', 'in', [company_id, False])]",
        check_company=True,
    )
    is_service = fields.Boolean(compute="_compute_is_service")
    name = fields.Text(string="Description", compute="_compute_name", store=True, readonly=False)
    quantity = fields.Float(default=1.0, digits="Product Unit of Measure")
    hours = fields.Float(
        compute="_compute_hours",
        store=True,
        readonly=False,
        help="Hours worked, for service lines: when set, the invoice charges the "
        "hours instead of the quantity.",
    )
    price_unit = fields.Float(
        string="Unit Price",
        compute="_compute_price_unit",
        store=True,
        readonly=False,
        digits="Product Price",
    )
    invoice_quantity = fields.Float(
        string="Invoiced quantity",
        compute="_compute_invoice_quantity",
        digits="Product Unit of Measure",
        help="What the invoice line charges: the hours of a service line when "
        "hours are given, the quantity otherwise.",
    )
    price_subtotal = fields.Monetary(
        string="Subtotal", compute="_compute_price_subtotal", store=True
    )

    @api.depends("product_id.type")
    def _compute_is_service(self):
        for line in self:
            line.is_service = line.product_id.type == "service"

    @api.depends("product_id")
    def _compute_name(self):
        for line in self:
            product = line.product_id
            if product:
                line.name = product.get_product_multiline_description_sale()

    @api.depends("product_id")
    def _compute_hours(self):
        # Hours only mean something for services; a line switched to a good
        # drops them so they cannot silently change the invoiced quantity.
        for line in self:
            if line.product_id.type != "service":
                line.hours = 0.0

    @api.depends("product_id")
    def _compute_price_unit(self):
        for line in self:
            if line.product_id:
                line.price_unit = line.product_id.lst_price

    @api.depends("product_id.type", "quantity", "hours")
    def _compute_invoice_quantity(self):
        for line in self:
            line.invoice_quantity = line._sage_invoice_quantity()

    @api.depends("product_id.type", "quantity", "hours", "price_unit")
    def _compute_price_subtotal(self):
        for line in self:
            line.price_subtotal = line._sage_invoice_quantity() * line.price_unit

    def _sage_invoice_quantity(self):
        self.ensure_one()
        if self.product_id.type == "service" and self.hours:
            return self.hours
        return self.quantity

    def _sage_check_invoiceable(self):
        """Reasons this line cannot go on an invoice (translated strings)."""
        self.ensure_one()
        problems = []
        product = self.product_id.with_context(active_test=False)
        label = product.display_name or self.name or self.env._("(no product)")
        if not product:
            problems.append(self.env._("a line has no product"))
        elif not product.active or not product.product_tmpl_id.active:
            problems.append(self.env._("product “%(product)s” is archived", product=label))
        elif not product.sale_ok:
            problems.append(self.env._("product “%(product)s” cannot be sold", product=label))
        if self.quantity <= 0:
            problems.append(
                self.env._("line “%(product)s” has a zero or negative quantity", product=label)
            )
        if self.hours < 0:
            problems.append(self.env._("line “%(product)s” has negative hours", product=label))
        if self.price_unit <= 0:
            problems.append(
                self.env._("line “%(product)s” has a zero or negative unit price", product=label)
            )
        return problems

    def _sage_prepare_invoice_line(self):
        self.ensure_one()
        return {
            "sequence": self.sequence,
            "product_id": self.product_id.id,
            "name": self.name or self.product_id.display_name,
            "quantity": self._sage_invoice_quantity(),
            "price_unit": self.price_unit,
        }
