"""Make the pure-Python ``sage_api`` package importable without Odoo.

``sage_api`` lives inside the Odoo addon folder; importing it as
``sage_one_connector.sage_api`` would execute the addon's ``__init__`` (which
imports Odoo). Pure tests put the addon folder itself on ``sys.path`` and
``import sage_api`` as a top-level package instead.
"""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON_DIR = os.path.join(REPO_ROOT, "sage_one_connector")


def add_sage_api_to_path():
    if ADDON_DIR not in sys.path:
        sys.path.insert(0, ADDON_DIR)
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)


add_sage_api_to_path()
