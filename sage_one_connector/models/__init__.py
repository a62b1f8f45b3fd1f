from . import (
    res_company,
    sage_connection,
    sage_contact_link,
    sage_reference,
)
