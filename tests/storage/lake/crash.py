"""Run lake code in a child process that SIGKILLs itself at its n-th file-system event.

Python's audit hooks see every `open`, rename and removal the lifecycle code makes, so killing at
event 1, 2, 3, ... stops a run between every pair of durable steps, without a test hook in the
code under test. Only events on paths inside the lake count (not module imports). The child runs
`code` with `lake` (a Path) and `date` in scope.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
_CHILD = """
import os, signal, sys
from datetime import date
from pathlib import Path
{imports}
lake, kill_at, seen = Path(sys.argv[1]), int(sys.argv[2]), 0

def die_at_nth_event(event, args):
    global seen
    if event in ("open", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree") and str(args[0]).startswith(str(lake)):
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(die_at_nth_event)
{code}
"""


def run_killed_at(kill_at: int, lake: Path, imports: str, code: str) -> bool:
    """Run `code` in a child killed at its `kill_at`-th file event; True if it was killed,
    False if it finished first."""
    script = _CHILD.format(imports=textwrap.dedent(imports), code=textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script, str(lake), str(kill_at)], env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode == -signal.SIGKILL:
        return True
    assert proc.returncode == 0, proc.stderr
    return False
