from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_groups_and_implication(self):
        team = self.env.ref("sage_one_connector.group_sage_accounts_team")
        manager = self.env.ref("sage_one_connector.group_sage_financial_manager")
        category = self.env.ref("sage_one_connector.module_category_sage_one_connector")
        self.assertEqual(team.category_id, category)
        self.assertEqual(manager.category_id, category)
        self.assertIn(team, manager.implied_ids)
        self.assertIn(self.env.ref("account.group_account_invoice"), team.implied_ids)
        self.assertTrue(
            self.env.ref("base.user_admin").has_group(
                "sage_one_connector.group_sage_financial_manager"
            )
        )

    def test_manager_implies_team_for_new_user(self):
        user = self.env["res.users"].create(
            {
                "name": "Finance Lead",
                "login": "finance.lead@example.com",
                "groups_id": [
                    (6, 0, [self.env.ref("sage_one_connector.group_sage_financial_manager").id])
                ],
            }
        )
        self.assertTrue(user.has_group("sage_one_connector.group_sage_accounts_team"))
        self.assertTrue(user.has_group("account.group_account_invoice"))

    def test_every_model_has_access_rules(self):
        models = self.env["ir.model"].search(
            [("model", "=like", "sage.%"), ("transient", "=", False)]
        )
        models |= self.env["ir.model"].search(
            [("model", "=like", "sage.%"), ("transient", "=", True)]
        )
        abstract = {name for name, model in self.env.registry.items() if model._abstract}
        for model in models.filtered(lambda m: m.model not in abstract):
            self.assertTrue(
                self.env["ir.model.access"].search_count([("model_id", "=", model.id)]),
                f"{model.model} has no access rule",
            )
