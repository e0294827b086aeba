"""Sink server for test_tcp (runs in namespace B): reads each connection to EOF, replies "ok"."""
import socket
import sys
import threading

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(16)
print("ready", flush=True)


def handle(c):
    while c.recv(1 << 16):
        pass
    c.sendall(b"ok")
    c.close()


while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
