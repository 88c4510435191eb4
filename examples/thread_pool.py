"""A TCP echo server on loopback served by a pool of threads that all wait on
one iowait.IOWait, and clients in the same program that check the echo.
No lock guards a connection: a file reported to a thread is reported to no
other until that thread calls wait() again (docs/behaviour.md, L2), so the
thread that gets a connection reads it, echoes it and may close it, alone.
notify() ends every wait in progress (L5): the pool's shutdown. Typed;
prints OK, or exits non-zero on a mismatch."""

import socket
import sys
import threading

import iowait


def main(threads: int = 4, clients: int = 20) -> None:
    listener = socket.create_server(('127.0.0.1', 0))
    listener.setblocking(False)
    stop = threading.Event()
    served: list[int] = []
    with listener, iowait.IOWait() as waitobj:
        waitobj.watch(listener, read=True)
        def serve() -> None:
            while not stop.is_set():
                for event in waitobj.wait(5):
                    sock = event.fileobj
                    if sock is listener:
                        while True:
                            try:
                                conn, _ = listener.accept()
                            except BlockingIOError:
                                break
                            conn.setblocking(False)
                            waitobj.watch(conn, read=True)
                        continue
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(256)
                    except BlockingIOError:
                        continue
                    if data:
                        sock.sendall(data)
                        served.append(1)
                    else:
                        waitobj.unwatch(sock)
                        sock.close()
            waitobj.notify()  # a thread whose wait began after the shutdown's notify() ends too

        pool = [threading.Thread(target=serve) for _ in range(threads)]
        for t in pool:
            t.start()
        conns = [socket.create_connection(listener.getsockname(), timeout=10) for _ in range(clients)]
        for _ in range(2):
            for i, c in enumerate(conns):
                msg = f'hello {i}\n'.encode()
                c.sendall(msg)
                got = b''
                while len(got) < len(msg):
                    got += c.recv(256)
                if got != msg:
                    sys.exit(f'FAIL: sent {msg!r}, got {got!r}')
        for c in conns:
            c.close()
        stop.set()
        waitobj.notify()
        for t in pool:
            t.join()
        print(f'{len(served)} echoes by {threads} threads on one IOWait ({waitobj.backend})')
        if len(served) != 2 * clients:
            sys.exit('FAIL: echo count')
    print('OK')


if __name__ == '__main__':
    main()
