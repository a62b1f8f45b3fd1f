"""The Connect flow through the real controller, against the sandbox.

An administrator saves the client ID in Settings, clicks Connect, approves
Odoo on the sandbox's consent page and comes back to
/sage_one/oauth/callback. Every bad input must end on a clear page with
nothing changed.
"""

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import TEST_CLIENT_ID, TEST_CLIENT_SECRET, SageSandboxCase

CALLBACK = "/sage_one/oauth/callback"
ADMIN_GROUPS = (
    "base.group_system,account.group_account_manager,"
    "sage_one_connector.group_sage_financial_manager"
)


@tagged("post_install", "-at_install")
class TestConnectFlow(SageSandboxCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_1 = cls.company_data["company"]
        cls.company_2 = cls.setup_other_company(name="Sage Two Ltd")["company"]
        cls.admin = new_test_user(
            cls.env,
            login="sage_admin",
            groups=ADMIN_GROUPS,
            company_id=cls.company_2.id,
            company_ids=[(6, 0, (cls.company_1 | cls.company_2).ids)],
        )
        cls.other_admin = new_test_user(
            cls.env,
            login="sage_admin_2",
            groups=ADMIN_GROUPS,
            company_id=cls.company_2.id,
            company_ids=[(6, 0, (cls.company_1 | cls.company_2).ids)],
        )
        cls.multi = cls.sandbox.add_user(
            email="multi@sage-test.example",
            businesses=[
                {"name": "North Ltd", "country": "GB", "subscription": "ACCOUNTING"},
                {"name": "South Ltd", "country": "GB", "subscription": "ACCOUNTS"},
                {
                    "name": "Lapsed Ltd",
                    "country": "GB",
                    "subscription": "ACCOUNTING",
                    "active": False,
                },
            ],
        )
        cls.lapsed = cls.sandbox.add_user(
            email="lapsed@sage-test.example",
            businesses=[
                {
                    "name": "Only Lapsed Ltd",
                    "country": "GB",
                    "subscription": "ACCOUNTING",
                    "active": False,
                }
            ],
        )
        cls.single = cls.sandbox.add_user(
            email="single@sage-test.example",
            businesses=[{"name": "Single Shop Ltd", "country": "GB"}],
        )

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def _login(self, login="sage_admin"):
        self.authenticate(login, login)

    def _rpc(self, model, method, args, kwargs=None):
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def _button(self, model, method, ids):
        return self.make_jsonrpc_request(
            "/web/dataset/call_button",
            {"model": model, "method": method, "args": [ids], "kwargs": {}},
        )

    def _save_settings(self, **values):
        settings_id = self._rpc("res.config.settings", "create", [values])
        self._button("res.config.settings", "execute", [settings_id])
        return settings_id

    def _connection_2(self):
        return self.env["sage.connection"]._for_company(self.company_2, raise_if_missing=False)

    def _point_at_sandbox(self, connection):
        connection.sudo().write(
            {
                "api_url": self.sandbox.api_url,
                "authorize_url": self.sandbox.authorize_url,
                "token_url": self.sandbox.token_url,
                "revoke_url": self.sandbox.revoke_url,
            }
        )

    def _prepared_connection_2(self):
        """Company 2's connection, created by Settings and pointed at the sandbox."""
        self._login()
        self._save_settings(sage_client_id=TEST_CLIENT_ID, sage_client_secret=TEST_CLIENT_SECRET)
        connection = self._connection_2()
        self._point_at_sandbox(connection)
        return connection

    def _click_connect(self, connection):
        """Connect as the logged-in user; returns the `state` of the authorize URL."""
        action = self._button("sage.connection", "action_sage_connect", [connection.id])
        self.assertEqual(action["type"], "ir.actions.act_url")
        self.assertEqual(action["target"], "self")
        url = urlsplit(action["url"])
        self.assertTrue(action["url"].startswith(self.sandbox.authorize_url))
        query = parse_qs(url.query)
        self.assertEqual(query["client_id"], [TEST_CLIENT_ID])
        self.assertEqual(query["redirect_uri"], [self.redirect_uri])
        self.assertEqual(query["filter"], ["apiv3.1"])
        return query["state"][0], action["url"]

    def _approve(self, state, sage_user_id):
        callback = self.sandbox.approve(
            TEST_CLIENT_ID, self.redirect_uri, state, user_id=sage_user_id
        )
        return urlsplit(callback)._replace(scheme="", netloc="").geturl()

    def _open(self, url):
        return self.url_open(url, allow_redirects=False)

    def _assert_error_page(self, response, status, text):
        self.assertEqual(response.status_code, status, response.text[:500])
        self.assertIn("The connection to Sage was not made", response.text)
        self.assertIn(text, response.text)

    def _assert_untouched(self, connection):
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "not_connected")
        self.assertFalse(connection.business_id)
        self.assertFalse(connection.sudo().refresh_token)
        self.assertFalse(connection.ledger_account_ids)

    # ------------------------------------------------------------------
    # Happy paths
    # ------------------------------------------------------------------
    def test_connect_one_business_through_the_consent_page(self):
        self._login()
        self._save_settings(sage_client_id=TEST_CLIENT_ID, sage_client_secret=TEST_CLIENT_SECRET)
        connection = self._connection_2()
        self.assertTrue(connection, "saving the client ID creates the company's connection")
        self.assertEqual(connection.sudo().client_id, TEST_CLIENT_ID)
        self._point_at_sandbox(connection)

        settings_id = self._rpc("res.config.settings", "create", [{}])
        action = self._button("res.config.settings", "action_sage_connect", [settings_id])
        authorize_url = action["url"]
        state = parse_qs(urlsplit(authorize_url).query)["state"][0]

        # The browser shows Sage's consent page, the user (the "single" Sage
        # user here) clicks Allow.
        page = requests.get(authorize_url + "&sandbox_user=" + self.single["user_id"], timeout=10)
        self.assertEqual(page.status_code, 200)
        self.assertIn(TEST_CLIENT_ID, page.text)
        form = dict(parse_qs(urlsplit(authorize_url).query, keep_blank_values=True))
        form = {key: values[0] for key, values in form.items()}
        form.update(sandbox_user=self.single["user_id"], decision="allow")
        allowed = requests.post(
            self.sandbox.authorize_url, data=form, allow_redirects=False, timeout=10
        )
        self.assertEqual(allowed.status_code, 302)
        location = allowed.headers["Location"]
        self.assertTrue(location.startswith(self.redirect_uri))
        self.assertEqual(parse_qs(urlsplit(location).query)["state"], [state])

        response = self._open(location)
        self.assertIn(response.status_code, (302, 303), response.text[:500])
        self.assertEqual(
            urlsplit(response.headers["Location"]).path, f"/odoo/sage.connection/{connection.id}"
        )
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.business_id, self.single["business_ids"][0])
        self.assertEqual(connection.business_name, "Single Shop Ltd")
        self.assertEqual(connection.business_currency, "GBP")
        self.assertTrue(connection.sudo().refresh_token)
        self.assertTrue(connection.last_reference_sync)
        self.assertIn("4000", connection.ledger_account_ids.mapped("nominal_code"))
        self.assertIn("GB_STANDARD", connection.tax_rate_ids.mapped("sage_id"))
        self.assertIn("GBP", connection.currency_ids.mapped("sage_id"))
        # The stored token works for the chosen business.
        self.assertEqual(
            connection._sage_client().get_financial_settings()["$path"], "/financial_settings"
        )

        # Replaying the same callback (same state) is refused, nothing changes.
        token_before = connection.sudo().refresh_token
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            replay = self._open(location)
        self._assert_error_page(replay, 403, "already used")
        connection.invalidate_recordset()
        self.assertEqual(connection.sudo().refresh_token, token_before)

    def test_several_businesses_open_the_choice_wizard(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        response = self._open(self._approve(state, self.multi["user_id"]))
        self.assertIn(response.status_code, (302, 303), response.text[:500])
        path = urlsplit(response.headers["Location"]).path
        self.assertTrue(path.startswith("/odoo/sage.business.select/"), path)
        wizard = self.env["sage.business.select"].browse(int(path.rsplit("/", 1)[1]))
        self.assertEqual(wizard.connection_id, connection)
        self.assertEqual(
            sorted(wizard.line_ids.mapped("name")), ["Lapsed Ltd", "North Ltd", "South Ltd"]
        )
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "not_connected", "no business chosen yet")

        # The business without an active subscription is refused, nothing changes.
        lapsed = wizard.line_ids.filtered(lambda line: line.name == "Lapsed Ltd")
        refused = self._call_button_error(
            "sage.business.select.line", "action_sage_choose", lapsed.ids
        )
        self.assertIn("subscription", refused["message"])
        self.assertIn("not active", refused["message"])
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "not_connected")
        self.assertFalse(connection.business_id)
        self.assertFalse(connection.ledger_account_ids)

        north = wizard.line_ids.filtered(lambda line: line.name == "North Ltd")
        action = self._button("sage.business.select.line", "action_sage_choose", north.ids)
        self.assertEqual(action["res_model"], "sage.connection")
        self.assertEqual(action["res_id"], connection.id)
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.business_name, "North Ltd")
        self.assertEqual(connection.business_id, self.multi["business_ids"][0])
        self.assertTrue(connection.ledger_account_ids)

    def _call_button_error(self, model, method, ids):
        """Call a button expecting a user error; returns the error data."""
        response = self.url_open(
            "/web/dataset/call_button",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {"model": model, "method": method, "args": [ids], "kwargs": {}},
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        error = response.json().get("error")
        self.assertTrue(error, "the button must fail")
        return error["data"]

    def test_disconnect_revokes_and_forgets_the_tokens(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        self._open(self._approve(state, self.single["user_id"]))
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "connected")
        refresh_token = connection.sudo().refresh_token

        self._button("sage.connection", "action_sage_disconnect", [connection.id])
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "not_connected")
        self.assertFalse(connection.sudo().refresh_token)
        self.assertFalse(connection.sudo().access_token)
        self.assertFalse(self.sandbox.state.refresh_tokens[refresh_token]["active"])

    def test_disconnect_tolerates_a_failing_revoke(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        self._open(self._approve(state, self.single["user_id"]))
        self.sandbox.fail_next(1, status=503, path_contains="/revoke")
        with mute_logger("odoo.addons.sage_one_connector.models.sage_connection"):
            self._button("sage.connection", "action_sage_disconnect", [connection.id])
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "not_connected")
        self.assertFalse(connection.sudo().refresh_token)

    def test_reconnect_keeps_the_business_of_sent_documents(self):
        """A company that already sent documents cannot switch to another business."""
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        self._open(self._approve(state, self.single["user_id"]))
        connection.invalidate_recordset()
        invoice = self.init_invoice("out_invoice", amounts=[100], company=self.company_2)
        invoice.sudo().write({"sage_connection_id": connection.id, "sage_id": "abc"})

        state, _url = self._click_connect(connection)
        response = self._open(self._approve(state, self.multi["user_id"]))
        wizard_id = int(urlsplit(response.headers["Location"]).path.rsplit("/", 1)[1])
        north = (
            self.env["sage.business.select"]
            .browse(wizard_id)
            .line_ids.filtered(lambda line: line.name == "North Ltd")
        )
        error = self._call_button_error(
            "sage.business.select.line", "action_sage_choose", north.ids
        )
        self.assertIn("already sent documents", error["message"])
        connection.invalidate_recordset()
        self.assertEqual(connection.business_name, "Single Shop Ltd")

    # ------------------------------------------------------------------
    # Bad inputs: a clear page, nothing changed
    # ------------------------------------------------------------------
    def test_forged_state(self):
        connection = self._prepared_connection_2()
        _state, _url = self._click_connect(connection)
        callback = self._approve("forged-state", self.single["user_id"])
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(callback)
        self._assert_error_page(response, 403, "unknown state")
        self._assert_untouched(connection)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        self.assertFalse(self.sandbox.state.codes[code]["used"], "the code was not even tried")

    def test_missing_state(self):
        connection = self._prepared_connection_2()
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(CALLBACK + "?code=GB%2Fabc")
        self._assert_error_page(response, 403, "unknown state")
        self._assert_untouched(connection)

    def test_expired_state(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        self.env["sage.oauth.state"].search([("connection_id", "=", connection.id)]).write(
            {"expires_at": fields.Datetime.now() - timedelta(seconds=1)}
        )
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(self._approve(state, self.single["user_id"]))
        self._assert_error_page(response, 403, "expired")
        self._assert_untouched(connection)

    def test_state_of_another_user(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        callback = self._approve(state, self.single["user_id"])
        self._login("sage_admin_2")
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(callback)
        self._assert_error_page(response, 403, "another user")
        self._assert_untouched(connection)
        # Still usable by the user who clicked Connect.
        self._login()
        self.assertIn(self._open(callback).status_code, (302, 303))

    def test_state_of_a_company_the_user_left(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        callback = self._approve(state, self.single["user_id"])
        self.admin.write(
            {"company_id": self.company_1.id, "company_ids": [(6, 0, self.company_1.ids)]}
        )
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(callback)
        self._assert_error_page(response, 403, "company you cannot access")
        self._assert_untouched(connection)

    def test_access_denied(self):
        connection = self._prepared_connection_2()
        _state, authorize_url = self._click_connect(connection)
        form = {key: values[0] for key, values in parse_qs(urlsplit(authorize_url).query).items()}
        form.update(sandbox_user=self.single["user_id"], decision="deny")
        denied = requests.post(
            self.sandbox.authorize_url, data=form, allow_redirects=False, timeout=10
        )
        location = denied.headers["Location"]
        self.assertIn("error=access_denied", location)
        response = self._open(location)
        self._assert_error_page(response, 400, "You declined")
        self._assert_untouched(connection)

    def test_code_used_twice(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        callback = self._approve(state, self.single["user_id"])
        self._open(callback)
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "connected")
        token_before = connection.sudo().refresh_token

        # A new Connect click, but the old code: Sage answers invalid_grant.
        new_state, _url = self._click_connect(connection)
        query = parse_qs(urlsplit(callback).query)
        replay = CALLBACK + "?" + urlencode({"code": query["code"][0], "state": new_state})
        response = self._open(replay)
        self._assert_error_page(response, 400, "already used or has expired")
        connection.invalidate_recordset()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.sudo().refresh_token, token_before)

    def test_code_expired(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        callback = self._approve(state, self.single["user_id"])
        self.sandbox.advance_clock(61)
        response = self._open(callback)
        self._assert_error_page(response, 400, "already used or has expired")
        self._assert_untouched(connection)

    def test_inactive_subscription(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        response = self._open(self._approve(state, self.lapsed["user_id"]))
        self._assert_error_page(response, 400, "is not active")
        self._assert_untouched(connection)
        # The grant Odoo could not use was handed back to Sage.
        user_tokens = [
            record
            for record in self.sandbox.state.refresh_tokens.values()
            if record["user_id"] == self.lapsed["user_id"]
        ]
        self.assertEqual(len(user_tokens), 1)
        self.assertFalse(user_tokens[0]["active"])

    def test_missing_client_id(self):
        self._login()
        settings_id = self._save_settings()
        error = self._call_button_error("res.config.settings", "action_sage_connect", [settings_id])
        self.assertIn("client ID and client secret", error["message"])
        self.assertFalse(self._connection_2(), "a refused Connect creates nothing")

    def test_non_administrator_cannot_connect(self):
        connection = self._prepared_connection_2()
        self.manager_user.write(
            {"company_ids": [(4, self.company_2.id)], "password": "sage_manager"}
        )
        self.authenticate("sage_manager", "sage_manager")
        error = self._call_button_error("sage.connection", "action_sage_connect", [connection.id])
        self.assertEqual(error["name"], "odoo.exceptions.AccessError")
        self.assertFalse(
            self.env["sage.oauth.state"].search([("connection_id", "=", connection.id)])
        )
        with mute_logger("odoo.addons.sage_one_connector.controllers.main"):
            response = self._open(CALLBACK + "?code=x&state=y")
        self._assert_error_page(response, 403, "Only system administrators")

    def test_no_redirect_taken_from_the_request(self):
        connection = self._prepared_connection_2()
        state, _url = self._click_connect(connection)
        callback = self._approve(state, self.single["user_id"])
        callback += "&redirect=https%3A%2F%2Fevil.example%2F&next=https%3A%2F%2Fevil.example%2F"
        response = self._open(callback)
        location = urlsplit(response.headers["Location"])
        self.assertIn(location.netloc, ("", urlsplit(self.base_url()).netloc))
        self.assertEqual(location.path, f"/odoo/sage.connection/{connection.id}")
