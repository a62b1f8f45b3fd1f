"""Installs the addon as `odoo.addons.sage_one_connector` and the Sage sandbox.

pip install .            # then Odoo finds the addon without --addons-path
"""

from setuptools import setup

ADDON = "sage_one_connector"

setup(
    name="odoo-addon-sage_one_connector",
    version="18.0.1.0.0",
    description="Odoo 18 connector for Sage Business Cloud Accounting (API v3.1)",
    license="LGPL-3",
    python_requires=">=3.10",
    packages=[
        f"odoo.addons.{ADDON}",
        f"odoo.addons.{ADDON}.sage_api",
        f"odoo.addons.{ADDON}.models",
        f"odoo.addons.{ADDON}.wizards",
        f"odoo.addons.{ADDON}.controllers",
        f"odoo.addons.{ADDON}.tests",
        "sage_sandbox",
    ],
    package_dir={f"odoo.addons.{ADDON}": ADDON},
    include_package_data=True,
    package_data={
        f"odoo.addons.{ADDON}": [
            "__manifest__.py",
            "security/*",
            "views/*",
            "data/*",
            "demo/*",
            "wizards/*.xml",
            "i18n/*",
            "static/description/*",
            "static/src/**/*",
        ],
        "sage_sandbox": ["swagger/*.json", "README.md"],
    },
    install_requires=["requests>=2.31", "requests-oauthlib>=1.3"],
)
