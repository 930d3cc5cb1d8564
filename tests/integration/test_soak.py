"""A short soak (tools/soak, 60 s by default; OBENTCHI_TEST_SOAK_SECONDS
changes it): mixed RESP traffic, webhook conversations, deposits with signed
callbacks, withdrawals through the payout stand-in and a Python-worked queue
against a master with a replica and snapshots on.  The tool's own checks
decide (exit status 0): memory bounded, balances equal ledgers, no job lost,
no payout twice, replica equal to the master, snapshots made.  The test also
reads the report to be sure every kind of load actually ran."""
import os
import re
import subprocess
import sys

import pytest

from conftest import OBENTCHI_SERVER, REPO

pytestmark = [pytest.mark.obentchi_only, pytest.mark.slow]

SECONDS = float(os.environ.get("OBENTCHI_TEST_SOAK_SECONDS", "60"))


def test_soak_short():
    argv = [sys.executable, str(REPO / "tools" / "soak"), "--server", OBENTCHI_SERVER,
            "--duration", str(SECONDS), "--interval", str(max(10.0, SECONDS / 4)), "--warmup", str(SECONDS / 3),
            "--save-every", "10"]
    if os.environ.get("OBENTCHI_SANITIZED"):
        # ASan's quarantine and shadow memory make RSS say nothing about leaks
        # (LeakSanitizer reports them at the servers' exit instead), and the
        # sanitized server is several times slower: lighter rates
        argv += ["--no-memory-check", "--webhook-rate", "40", "--withdraw-rate", "10", "--jobs-rate", "20"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS + 400)
    out = p.stdout + p.stderr
    assert p.returncode == 0, "tools/soak failed (exit %d):\n%s" % (p.returncode, out[-6000:])
    assert "PASS: every invariant held" in out, out[-3000:]
    totals = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", out.split("totals:")[1].splitlines()[0]))
    for kind in ("resp", "webhook", "callback", "withdraw", "jobs"):
        assert totals.get(kind, 0) > 0, "no %s load ran: %r" % (kind, totals)
    assert "replica equals master: True" in out
    m = re.search(r"money: (\d+) users, (\d+) withdrawals requested by the operator, (\d+) holds in all, "
                  r"(\d+) payouts made", out)
    assert m and int(m.group(2)) > 0 and int(m.group(3)) == int(m.group(4)), out[-3000:]
