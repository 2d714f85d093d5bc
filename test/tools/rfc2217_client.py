#!/usr/bin/python3
"""A strict, independent RFC 2217 client for the tests: Debian's pyserial (python3-serial), whose
rfc2217:// driver waits for the server's answer to every setting and refuses an answer that differs
from the request. It shares no code with the server under test.

Driven by JSON lines on stdin, one answer line on stdout each: {"ok": true, "value": ...} or
{"ok": false, "error": "<exception type>: <message>"}. Requests:
  {"op": "open", "url": "rfc2217://127.0.0.1:7000", "settings": {"baudrate": 9600, ...}}
  {"op": "open", "url": "rfc2217://localhost:1", "unix": "/run/app/com.sock", ...}   over a Unix socket
  {"op": "write", "hex": "00ff"}            value: bytes written
  {"op": "read", "n": 10, "timeout": 5}     value: hex of what came within the timeout
  {"op": "set", "name": "rts", "value": false}
  {"op": "get", "name": "cd"}               value: the attribute (a modem line, a setting)
  {"op": "call", "name": "send_break", "args": [0.3]}
  {"op": "close"}
"""
import json
import socket
import sys

import serial


class UnixStream(socket.socket):
    """A Unix stream socket that takes pyserial's TCP_NODELAY as the no-op it is there."""

    def setsockopt(self, level, option, value, *rest):
        if level != socket.IPPROTO_TCP:
            super().setsockopt(level, option, value, *rest)


def dial_unix(path):
    """pyserial's rfc2217:// driver dials TCP; a one-hop endpoint is a Unix socket. Only the
    transport changes: pyserial's own Telnet and RFC 2217 code still speaks to the server."""
    def create_connection(_address, timeout=None, *_rest, **_named):
        s = UnixStream(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return s
    socket.create_connection = create_connection


def main():
    port = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request['op']
        try:
            value = None
            if op == 'open':
                if 'unix' in request:
                    dial_unix(request['unix'])
                port = serial.serial_for_url(request['url'], **request.get('settings', {}))
            elif op == 'write':
                value = port.write(bytes.fromhex(request['hex']))
            elif op == 'read':
                # Only when it changes: on a pty, glibc fails every tcsetattr of a port opened with
                # parity or fewer than 8 data bits (the kernel keeps CS8, no parity), so a needless
                # reconfigure would fail the read.
                if port.timeout != request.get('timeout', 5):
                    port.timeout = request.get('timeout', 5)
                value = port.read(request['n']).hex()
            elif op == 'set':
                setattr(port, request['name'], request['value'])
            elif op == 'get':
                value = getattr(port, request['name'])
            elif op == 'call':
                value = getattr(port, request['name'])(*request.get('args', []))
            elif op == 'close':
                port.close()
            else:
                raise ValueError('unknown op ' + op)
            answer = {'ok': True, 'value': value}
        except Exception as err:  # every failure is an answer: the test decides what it means
            answer = {'ok': False, 'error': '%s: %s' % (type(err).__name__, err)}
        print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main()
