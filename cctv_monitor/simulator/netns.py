"""Network namespaces for a fleet: each camera in its own namespace on a private bridge (10.77.0.0/24).

Layout (names carry the launcher's pid, so a stale set from a dead run is recognised and removed):
``cctvsim-<pid>-lan`` holds bridge ``br0``; ``cctvsim-<pid>-c<N>`` is camera N at 10.77.0.(10+N) with
``eth0``; ``cctvsim-<pid>-client`` at 10.77.0.2 is where clients (tests, discovery) run. Nothing is
attached to the host's own interfaces, so multicast never leaves these namespaces.

Cleanup happens in :meth:`NetnsFleet.teardown` (normal exit, Ctrl-C, SIGTERM), in a watchdog
subprocess that outlives a crashed or killed launcher, and at the next start (stale pids).
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from cctv_monitor.simulator.fleet import CameraSpec
from cctv_monitor.simulator.onvif_server import CameraBinding

LOGGER = logging.getLogger(__name__)

PREFIX = "cctvsim-"
SUBNET = "10.77.0"
CLIENT_ADDR = f"{SUBNET}.2"
FIRST_CAMERA = 10
MAX_CAMERAS = 240
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """Namespace setup failed; the message names the ``ip`` command and its error."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    """Run many ``ip`` commands in one process (optionally inside ``netns``)."""
    proc = subprocess.run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetnsError(f"ip {'-n ' + netns + ' ' if netns else ''}-batch failed: {proc.stderr.strip()[-500:]}")


def list_namespaces() -> list[str]:
    """Names of all network namespaces."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespaces(names: list[str]) -> None:
    """Delete the given namespaces (missing ones are ignored)."""
    if names:
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {n}\n" for n in names),
                       capture_output=True, text=True)


def cleanup_stale() -> list[str]:
    """Delete ``cctvsim-<pid>-*`` namespaces whose launcher pid is gone; return their names."""
    stale = []
    for name in list_namespaces():
        if not name.startswith(PREFIX):
            continue
        pid_text = name[len(PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or not _pid_alive(int(pid_text)):
            stale.append(name)
    if stale:
        LOGGER.warning("removing %d stale simulator namespaces: %s", len(stale), " ".join(stale))
        delete_namespaces(stale)
    return stale


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_namespace(name: str) -> Iterator[None]:
    """Run the block with this *thread* inside namespace ``name``; sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


_WATCHDOG = """
import subprocess, sys
sys.stdin.read()  # returns at EOF: the launcher exited, normally or not
out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
names = [l.split()[0] for l in out.splitlines() if l.startswith(sys.argv[1])]
if names:
    subprocess.run(["ip", "-force", "-batch", "-"], input="".join("netns delete %s\\n" % n for n in names), text=True)
"""


class NetnsFleet:
    """Creates and removes the namespaces of one fleet run."""

    def __init__(self, cameras: list[CameraSpec]) -> None:
        if len(cameras) > MAX_CAMERAS:
            raise NetnsError(f"--netns supports at most {MAX_CAMERAS} cameras on {SUBNET}.0/24, got {len(cameras)}")
        self.cameras = cameras
        self.tag = f"{PREFIX}{os.getpid()}"
        self.lan_ns = f"{self.tag}-lan"
        self.client_ns = f"{self.tag}-client"
        self.camera_ns = [f"{self.tag}-c{i}" for i in range(len(cameras))]
        self._watchdog: subprocess.Popen | None = None
        self.bindings: list[CameraBinding] = []

    @property
    def names(self) -> list[str]:
        """Every namespace this fleet creates."""
        return [self.lan_ns, self.client_ns, *self.camera_ns]

    def _start_watchdog(self) -> None:
        # A separate session so Ctrl-C on the launcher's terminal does not kill the watchdog first.
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, f"{self.tag}-"], stdin=subprocess.PIPE,
                                          start_new_session=True)

    def setup(self) -> list[CameraBinding]:
        """Create bridge, namespaces and veth pairs; bind each camera's ONVIF socket inside its namespace."""
        cleanup_stale()
        self._start_watchdog()
        try:
            _ip_batch([f"netns add {n}" for n in self.names])
            # `ip -batch` has no per-line -n, so: one batch for the veth pairs, then one per namespace.
            per_ns: dict[str, list[str]] = {self.lan_ns: ["link add br0 type bridge",
                                                          "link set br0 type bridge mcast_snooping 0",
                                                          "link set br0 up"]}
            hosts = [(self.client_ns, CLIENT_ADDR, "pc")]
            hosts += [(ns, f"{SUBNET}.{FIRST_CAMERA + i}", f"p{i}") for i, ns in enumerate(self.camera_ns)]
            veths = []
            for ns, addr, port in hosts:
                veths.append(f"link add eth0 netns {ns} type veth peer name {port} netns {self.lan_ns}")
                per_ns[self.lan_ns] += [f"link set {port} master br0", f"link set {port} up"]
                per_ns[ns] = ["link set lo up", "link set eth0 up", f"addr add {addr}/24 dev eth0",
                              "route add 224.0.0.0/4 dev eth0"]
            _ip_batch(veths)
            lan_lines = per_ns.pop(self.lan_ns)
            _ip_batch(lan_lines[:3], self.lan_ns)
            for ns, ns_lines in per_ns.items():
                _ip_batch(ns_lines, ns)
            _ip_batch(lan_lines[3:], self.lan_ns)
            for i, (cam, ns) in enumerate(zip(self.cameras, self.camera_ns)):
                addr = f"{SUBNET}.{FIRST_CAMERA + i}"
                with in_namespace(ns):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((addr, 80))
                    sock.listen(128)
                    sock.setblocking(False)
                binding = CameraBinding(spec=cam, host=addr, onvif_port=80, rtsp_port=554, sock=sock)
                binding.netns_name = ns  # type: ignore[attr-defined]
                self.bindings.append(binding)
        except BaseException:
            self.teardown()
            raise
        LOGGER.info("created %d namespaces (%s-*)", len(self.names), self.tag)
        return self.bindings

    def udp_socket(self, ns: str, addr: str) -> socket.socket:
        """A WS-Discovery socket inside ``ns``: port 3702, joined to 239.255.255.250 on ``addr``."""
        with in_namespace(ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", 3702))  # inside the camera's own namespace, never the host's
            mreq = socket.inet_aton("239.255.255.250") + socket.inet_aton(addr)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setblocking(False)
        return sock

    def teardown(self) -> None:
        """Delete every namespace of this fleet and release the watchdog."""
        delete_namespaces([n for n in self.names if n in set(list_namespaces())])
        if self._watchdog is not None:
            if self._watchdog.stdin:
                self._watchdog.stdin.close()
            try:
                self._watchdog.wait(10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
            self._watchdog = None
        LOGGER.info("removed namespaces %s-*", self.tag)
