"""Cancel a TAUE job on the server if the GIMP plug-in that follows it dies first.

GIMP stops a plug-in whose progress the user cancels by killing it, and a killed process cannot say goodbye, so
the plug-in starts this small watcher beside it (its own session, so it outlives the plug-in):

    python3 cancel_watch.py URL JOB_ID PARENT_PID      (the token, if any, in $TAUE_TOKEN)

It exits quietly when the plug-in ends the watch (terminates it) or after a day; when the plug-in's process is
gone it posts the job's cancel. No GIMP import: tested outside GIMP.
"""

from __future__ import annotations

import os
import sys
import time

from taue_client import Client, TAUEError

POLL_S = 0.25
LIFETIME_S = 24 * 3600


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return os.getppid() == pid or _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return True  # no /proc (macOS): kill(pid, 0) said it exists


def watch(url: str, job_id: str, parent: int, token: str = "") -> bool:
    """Block until `parent` dies (then cancel the job; True) or the lifetime ends (False)."""
    deadline = time.monotonic() + LIFETIME_S
    while time.monotonic() < deadline:
        if not alive(parent):
            try:
                Client(url, token).cancel(job_id)
            except TAUEError:
                pass  # finished meanwhile, or the server is gone: nothing left to stop
            return True
        time.sleep(POLL_S)
    return False


if __name__ == "__main__":
    watch(sys.argv[1], sys.argv[2], int(sys.argv[3]), os.environ.get("TAUE_TOKEN", ""))
