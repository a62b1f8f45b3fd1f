from . import sage_business_select
from . import sage_connection_test
from . import sage_push_wizard
