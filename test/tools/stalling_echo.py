"""An echoing serial device that, once, stops taking bytes for a while, as a busy device holding
off its sender by flow control does: a fresh pseudo-terminal whose device end is linked at PATH,
and on its other end a loop that writes back what it reads. Once STALL_AFTER bytes have come it
reads nothing and sends nothing (not even those) for STALL_SECONDS, then echoes again. Prints "ready" once linked;
ends on SIGTERM, removing the link. Standard library only.

usage: stalling_echo.py PATH STALL_AFTER STALL_SECONDS
"""
import os
import signal
import sys
import time
import tty

link = sys.argv[1]
stall_after = int(sys.argv[2])
stall_seconds = float(sys.argv[3])
master, slave = os.openpty()
# The device end stays open here too (a pty whose last holder closes hangs up) but is never read.
tty.setraw(slave)
os.symlink(os.ttyname(slave), link)


def stop(_signum, _frame):
    os.unlink(link)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
received = 0
stalled = False
while True:
    data = os.read(master, 4096)
    received += len(data)
    if not stalled and received >= stall_after:
        stalled = True
        time.sleep(stall_seconds)
    view = memoryview(data)
    while view:
        view = view[os.write(master, view):]
