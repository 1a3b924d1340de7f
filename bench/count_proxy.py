"""A TCP proxy that counts the bytes it forwards, for bench/s3-rewrap.sh.

    python3 bench/count_proxy.py UPSTREAM_PORT PORT_FILE COUNT_FILE

Listens on 127.0.0.1 and a free port (written to PORT_FILE), forwards every
connection to 127.0.0.1:UPSTREAM_PORT, and on SIGTERM writes
"<bytes client to server> <bytes server to client>" to COUNT_FILE and exits.
"""
import signal
import socket
import sys
import threading

upstream_port = int(sys.argv[1])
port_file, count_file = sys.argv[2], sys.argv[3]
counts = [0, 0]
lock = threading.Lock()


def pump(src, dst, i):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            with lock:
                counts[i] += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    up = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pump, args=(client, up, 0), daemon=True).start()
    threading.Thread(target=pump, args=(up, client, 1), daemon=True).start()


def stop(*_):
    with lock:
        with open(count_file, "w") as f:
            f.write(f"{counts[0]} {counts[1]}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
with open(port_file, "w") as f:
    f.write(str(listener.getsockname()[1]))
while True:
    conn, _ = listener.accept()
    serve(conn)
