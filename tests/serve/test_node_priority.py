"""Ray's agents run below the request path: `pulse.node.lower_priority` on real processes."""
from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from pulse.node import lower_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread on Linux")

# a process with a second thread, both asleep until killed
TWO_THREADS = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); print(1, flush=True); time.sleep(60)"


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", TWO_THREADS], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"1"
        yield p.pid
    finally:
        p.kill()
        p.wait()


def nices(pid: int) -> list[int]:
    return [os.getpriority(os.PRIO_PROCESS, t.id) for t in psutil.Process(pid).threads()]


def test_every_thread_gets_the_niceness_and_none_is_raised_back(sleeper):
    assert nices(sleeper) == [0, 0]
    lower_priority([sleeper], 10)
    assert nices(sleeper) == [10, 10]
    lower_priority([sleeper], 5)  # never back up: that would need privileges, and is not what was asked
    assert nices(sleeper) == [10, 10]


def test_a_gone_process_is_skipped(sleeper):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lower_priority([gone.pid, sleeper], 3)
    assert nices(sleeper) == [3, 3]
