"""An app that writes without reading, then closes: connects with a small receive buffer (so the
echo backs up through the mesh, as it does on a machine with small socket buffers), sends up to
1 MiB for as long as the mesh takes it within 3 s, prints how much it sent, and closes."""
import socket
import sys
import time

port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.setblocking(False)
data = b"a" * (1 << 20)
sent = 0
deadline = time.time() + 3
while sent < len(data) and time.time() < deadline:
    try:
        sent += s.send(data[sent:])
    except BlockingIOError:
        time.sleep(0.01)
time.sleep(0.5)
print(sent, flush=True)
s.close()
