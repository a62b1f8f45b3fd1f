{
    "name": "Sage Business Cloud Accounting Connector",
    "summary": "Send customer invoices, credit notes and write-offs to Sage "
    "Business Cloud Accounting (API v3.1) and pull payments back",
    "version": "18.0.1.0.0",
    "category": "Accounting/Accounting",
    "author": "sage_one_connector contributors",
    "website": "https://github.com/sage-one-connector/sage_one_connector",
    "license": "LGPL-3",
    "depends": ["account", "crm", "mail", "bus"],
    "external_dependencies": {"python": ["requests", "requests_oauthlib"]},
    "data": [
        "security/sage_one_connector_security.xml",
        "security/ir.model.access.csv",
        "views/sage_connection_views.xml",
        "views/account_move_views.xml",
        "views/sage_one_connector_menus.xml",
        "views/res_partner_views.xml",
        "data/ir_cron_payments.xml",
        "views/sage_payment_views.xml",
        "data/ir_actions_server_data.xml",
        "views/crm_lead_views.xml",
    ],
    "demo": [
        "demo/crm_lead_demo.xml",
    ],
    "installable": True,
    "application": False,
}
