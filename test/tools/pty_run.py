#!/usr/bin/python3
"""Runs a command on a fresh pseudo-terminal, as a person at a terminal would: its stdin, stdout
and stderr are the pty (so isatty() is true for all three), and what it writes there is copied to
this script's stdout. SIGTERM to this script is passed on as SIGINT (Ctrl-C); the script ends
when the command does, with its exit status. Standard library only.

usage: pty_run.py COMMAND [ARG...]
"""
import os
import pty
import select
import signal
import sys

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])


def interrupt(_signum, _frame):
    os.kill(pid, signal.SIGINT)


signal.signal(signal.SIGTERM, interrupt)
out = sys.stdout.buffer
while True:
    try:
        ready, _, _ = select.select([fd], [], [])
        chunk = os.read(fd, 65536) if ready else b''
    except InterruptedError:
        continue
    except OSError:
        # EIO: the command and everything it started have closed the terminal.
        break
    if not chunk:
        break
    out.write(chunk)
    out.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
