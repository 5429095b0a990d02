"""Which local process sent a request: tests prove that a window sends nothing itself.

Linux only (it reads /proc): the peer's TCP port names a socket in /proc/net/tcp, whose
inode one process holds as an open file descriptor. Slow (it looks at every process), so
the simulator does it only when `SimConfig.record_senders` asks.
"""

from __future__ import annotations

import os


def _socket_inode(client_port: int, server_port: int) -> str | None:
    want_local, want_remote = f"{client_port:04X}", f"{server_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    local, remote, inode = fields[1], fields[2], fields[9]
                    if local.endswith(":" + want_local) and remote.endswith(":" + want_remote):
                        return inode
        except OSError:
            continue
    return None


def sender_pid(client_port: int, server_port: int) -> int | None:
    """The pid holding the client end of a loopback connection, or None if not found."""
    inode = _socket_inode(client_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{name}/fd"):
                if os.readlink(f"/proc/{name}/fd/{fd}") == target:
                    return int(name)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return None
