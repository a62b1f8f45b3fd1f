"""Summarise an Odoo test log: counts, failures, and a closing count line.

Odoo's runner logs "N failed, N error(s) of N tests when loading database"
(or "0 failed, 0 error(s) of N tests") at the end; every failing test logs
"FAIL: ..." or "ERROR: ...". Exits non-zero when a test failed, errored, when
no test ran, or when the log shows an error outside a test.
"""

import re
import sys


def summarise(text):
    totals = [
        tuple(int(n) for n in m.groups())
        for m in re.finditer(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests", text)
    ]
    failed = sum(t[0] for t in totals)
    errors = sum(t[1] for t in totals)
    ran = sum(t[2] for t in totals)
    problems = re.findall(r"^.*? (?:ERROR|CRITICAL) .*$", text, flags=re.MULTILINE)
    return ran, failed, errors, problems


def main(path):
    with open(path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    ran, failed, errors, problems = summarise(text)
    for line in problems[:40]:
        print(line[:400])
    passed = ran - failed - errors
    print(f"odoo: {passed} passed, {failed + errors} failed")
    if ran == 0:
        print("No Odoo test ran: see", path)
        return 1
    return 1 if (failed or errors or problems) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
