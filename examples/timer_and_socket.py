"""A periodic timer beside a socket in one IOWait, each event told apart by
identity (`event.fileobj is timer`), as the module's help says. Typed, and
checked with `mypy --strict` (python/scripts/test-wheel): a Source and a
file are both what IOEvent.fileobj may be. Exits non-zero on a mismatch."""

import socket
import sys

import iowait


def main() -> None:
    a, b = socket.socketpair()
    with a, b, iowait.IOWait() as waitobj:
        waitobj.watch(a, read=True)
        timer: iowait.Source = waitobj.watch_timer(0.02, 0.02)
        watched = waitobj.get_watched()
        if len(waitobj) != 2 or [e.fileobj is timer for e in watched] != [False, True]:
            sys.exit(f'FAIL: expected the socket, then the timer, watched: {watched!r}')
        b.sendall(b'ping')
        received = b''
        ticks = 0
        while ticks < 2 or not received:
            for event in waitobj.wait(5):
                if event.fileobj is timer:
                    ticks += 1
                elif event.fileobj is a:
                    received += a.recv(4)
                else:
                    sys.exit(f'FAIL: an event for something not watched: {event!r}')
        waitobj.unwatch(timer)
        print(f'{waitobj.backend}: {received!r} and {ticks} ticks')
        if received != b'ping':
            sys.exit(f'FAIL: received {received!r}')


if __name__ == '__main__':
    main()
