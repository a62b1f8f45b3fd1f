from . import test_install
from . import test_job_card
from . import test_payment_pull
from . import test_send
from . import test_send_exactly_once
from . import test_write_off
from . import test_push_rights
from . import test_bad_input_send
