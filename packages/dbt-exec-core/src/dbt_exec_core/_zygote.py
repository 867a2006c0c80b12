"""The zygote: a process that imports dbt once and forks ready-to-run worker processes.

Importing dbt-core takes seconds of CPU. On Linux, one zygote per calling process pays that once;
each worker is then an ``os.fork()`` of it, ready in milliseconds (replacing a worker killed by a
timeout costs nothing) and sharing the imported modules' memory copy-on-write. The zygote stays
single-threaded, so forking it is safe.

Protocol over a ``SOCK_SEQPACKET`` socket pair with the parent: the parent sends the worker's
JSON configuration with one attached file descriptor (its end of a new socket pair); the zygote
forks, the child serves that socket as a :class:`~dbt_exec_core._worker.Worker`, and the zygote
answers with the child's pid. The zygote exits when the parent closes its end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from multiprocessing.connection import Connection


def main(argv: list[str]) -> None:
    """Entry point: ``python -m dbt_exec_core._zygote SOCKET_FD``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when work stops
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    channel = socket.socket(fileno=int(argv[0]))
    from dbt_exec_core import _speedups
    from dbt_exec_core._worker import Worker, quiet_resource_tracker, warm_up

    quiet_resource_tracker()
    warm_up()
    _speedups.install()
    channel.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 65536, 1)
        except OSError:
            return
        if not message:
            return  # the parent is gone
        config = json.loads(message)
        pid = os.fork()
        if pid == 0:
            channel.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                Worker(Connection(fds[0]), config).serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        channel.send(str(pid).encode())


if __name__ == "__main__":
    main(sys.argv[1:])
