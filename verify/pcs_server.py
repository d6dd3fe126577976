"""A pcs zygote: loads pcs once, then forks a child per call, so a pcs command costs a fork, not a start-up.

Runs under Debian's /usr/bin/python3 (where pcs lives) and touches pcs only through its `console_scripts` entry
point, the same one /usr/sbin/pcs calls. A call (from `shim/pcs`) hands over its stdin, stdout and stderr file
descriptors with argv, environment and working directory; the child runs pcs's `main` exactly as /usr/sbin/pcs
would and reports its exit status. Each call is its own process: nothing one call does is seen by the next.

Usage: /usr/bin/python3 -I pcs_server.py SOCKET_PATH
"""

import contextlib
import importlib
import importlib.metadata
import json
import os
import pkgutil
import signal
import socket
import struct
import sys


def load_pcs_main():
    entry = next(
        e
        for e in importlib.metadata.distribution("pcs").entry_points
        if e.group == "console_scripts" and e.name == "pcs"
    )
    main = entry.load()
    # Warm the modules pcs imports lazily; an import that fails here is simply left to the call that needs it.
    import pcs

    for module in pkgutil.walk_packages(pcs.__path__, "pcs."):
        if ".daemon" in module.name:
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(module.name)
    return main


def serve_call(conn, main):
    header, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    (size,) = struct.unpack("!I", header[:4])
    body = header[4:]
    while len(body) < size:
        body += conn.recv(size - len(body))
    call = json.loads(body)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(call["cwd"])
    os.environ.clear()
    os.environ.update(call["env"])
    sys.argv = call["argv"]
    try:
        code = main()
    except SystemExit as stop:
        code = stop.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(struct.pack("!i", code))


def main_loop(path):
    main = load_pcs_main()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears only once it accepts
    server.listen(64)
    while True:
        conn, _ = server.accept()
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # pcs waits for its own children
            try:
                serve_call(conn, main)
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    main_loop(sys.argv[1])
