"""A province in a box (root): zones as network namespaces, each with a simulated fleet, a broker bridge and
a zone worker; the test process and the ingest worker stay outside and cannot reach the cameras.

The broker is the machine's RabbitMQ on 127.0.0.1:5672. A namespace cannot reach the host's loopback, so
every hop goes through Unix sockets (namespaces share the filesystem): ``amqp.sock`` relays to RabbitMQ;
each zone has its own relay ``<zone>.sock`` -> ``amqp.sock`` (cut it for a partition) and, inside the
zone, a TCP listener on 127.0.0.1:5672 -> ``<zone>.sock``. Every process is started in a session of its
own and ended with its whole group; every namespace is deleted at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from cctv_monitor.simulator.fleet import generate_fleet
from cctv_monitor.zones import create_zone_key

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "cctv-monitor")  # the console script of this environment
RABBIT = ("127.0.0.1", 5672)


def rabbit_reachable() -> bool:
    """True when RabbitMQ answers on 127.0.0.1:5672 in this namespace."""
    try:
        socket.create_connection(RABBIT, 2).close()
        return True
    except OSError:
        return False


def namespace_marks() -> list[Any]:
    """The marks of a module whose zones live in network namespaces: root and RabbitMQ, or a skip saying why."""
    import pytest

    marks: list[Any] = [pytest.mark.root, pytest.mark.slow, pytest.mark.postgres]
    if os.geteuid() != 0:
        marks.append(pytest.mark.skip(reason="needs root to create network namespaces (ip netns)"))
    elif not (os.environ.get("CCTV_TEST_AMQP_UNIX") or rabbit_reachable()):
        marks.append(pytest.mark.skip(reason="RabbitMQ on 127.0.0.1:5672 is not reachable here and "
                                             "CCTV_TEST_AMQP_UNIX names no bridge to it"))
    return marks


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> Any:  # noqa: ANN001
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Lab:
    """Processes and namespaces of one test; :meth:`close` ends all of them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tag = f"cz{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
        self.procs: list[subprocess.Popen] = []
        self.namespaces: list[str] = []
        self.relays: dict[str, subprocess.Popen] = {}
        self.key_dir = folder / "zone-keys"
        self.amqp_sock = os.environ.get("CCTV_TEST_AMQP_UNIX") or str(folder / "amqp.sock")
        self.ingest_queue = f"ingest.{self.tag}"
        self.broker_url = ""

    # processes
    def start(self, argv: list[str], *, netns: str | None = None, log: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``argv`` (inside ``netns`` if given) in its own session; output to ``<log>.log``."""
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        out = open(self.folder / f"{log or 'proc'}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        out.close()
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        """End ``proc`` and its whole process group (socat forks, Celery's children)."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        else:
            try:  # the leader is gone; its forks may not be
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """End every process, delete every namespace of this lab."""
        for proc in reversed(self.procs):
            self.stop(proc)
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)

    # broker
    def open_broker(self) -> str:
        """Relay ``amqp.sock`` to RabbitMQ (unless given) and a local TCP port to it; returns the URL."""
        if not os.environ.get("CCTV_TEST_AMQP_UNIX"):
            self.start(["socat", f"UNIX-LISTEN:{self.amqp_sock},fork,unlink-early", f"TCP:{RABBIT[0]}:{RABBIT[1]}"],
                       log="relay-rabbit")
            wait_for(lambda: Path(self.amqp_sock).exists(), 10, "the RabbitMQ relay")
        port = free_port()
        self.start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{self.amqp_sock}"],
                   log="relay-central")
        wait_for(lambda: _port_open(port), 10, "the central broker relay")
        self.broker_url = f"amqp://guest:guest@127.0.0.1:{port}//"
        return self.broker_url

    # zones
    def zone_name(self, index: int) -> str:
        """Zone name of this lab (unique per run, so queues never mix with another run's)."""
        return f"{self.tag}-z{index}"

    def add_zone(self, index: int, cameras: int, *, delay_ms: float = 0.0, wait: bool = True) -> dict[str, Any]:
        """Namespace, fleet on 127.16.<index>.x and broker bridge for zone ``index``; no worker yet.

        ``wait=False`` returns before the fleet is ready (start several, then :meth:`wait_ready`).
        """
        zone = self.zone_name(index)
        netns = f"{self.tag}n{index}"
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
        self.namespaces.append(netns)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, capture_output=True)
        create_zone_key(self.key_dir, zone)
        fleet = generate_fleet(cameras, base=f"127.16.{index}.0", delay_ms=delay_ms, name=zone)
        fleet_file = self.folder / f"{zone}.yaml"
        fleet_file.write_text(yaml.safe_dump(fleet))
        launcher = self.start([sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet", str(fleet_file),
                               "--json", "--no-streams"], netns=netns, log=f"fleet-{zone}")
        self.cut(zone, restore=True)
        self.start(["socat", "TCP-LISTEN:5672,bind=127.0.0.1,fork,reuseaddr",
                    f"UNIX-CONNECT:{self.folder / (zone + '.sock')}"], netns=netns, log=f"relay-in-{zone}")
        hosts = [c["host"] for c in fleet["cameras"]]
        info = {"zone": zone, "netns": netns, "hosts": hosts, "range": f"127.16.{index}.0/24",
                "password": fleet["defaults"]["password"], "username": fleet["defaults"]["username"],
                "macs": [c["macs"][0] for c in fleet["cameras"]], "launcher": launcher}
        if wait:
            self.wait_ready([info])
        return info

    def wait_ready(self, zones: list[dict[str, Any]]) -> None:
        """Wait until the fleets of ``zones`` answer (each launcher prints "ready")."""
        for info in zones:
            log = self.folder / f"fleet-{info['zone']}.log"
            wait_for(lambda log=log: b'"ready"' in log.read_bytes() if log.exists() else False, 60,
                     f"fleet of {info['zone']}")
            if info["launcher"].poll() is not None:
                raise AssertionError(f"fleet of {info['zone']} ended: {log.read_text()[-2000:]}")

    def cut(self, zone: str, *, restore: bool = False) -> None:
        """Cut the zone's bridge to the broker (every open connection through it too), or restore it."""
        relay = self.relays.pop(zone, None)
        if relay is not None:
            self.stop(relay, signal.SIGKILL)
        if restore:
            sock = self.folder / f"{zone}.sock"
            self.relays[zone] = self.start(["socat", f"UNIX-LISTEN:{sock},fork,unlink-early",
                                            f"UNIX-CONNECT:{self.amqp_sock}"], log=f"relay-{zone}")
            wait_for(sock.exists, 10, f"bridge of {zone}")

    def zone_worker(self, zone: dict[str, Any], *, concurrency: int = 1,
                    env: dict[str, str] | None = None) -> subprocess.Popen:
        """A zone worker inside the zone's namespace (broker through the zone's bridge)."""
        return self.start([CLI, "zone-worker", "--zone", zone["zone"],
                           "--key-dir", str(self.key_dir), "--concurrency", str(concurrency),
                           "--name", f"zone-{zone['zone']}@lab"], netns=zone["netns"], log=f"worker-{zone['zone']}",
                          env={"CCTV_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
                               "CCTV_DATABASE_URL": "", **(env or {})})

    def ingest_worker(self, env: dict[str, str]) -> subprocess.Popen:
        """The ingest worker in this (central) namespace."""
        return self.start([CLI, "ingest-worker", "--name", f"{self.tag}@lab"],
                          log="ingest", env={**env, "CCTV_BROKER_URL": self.broker_url,
                                             "CCTV_INGEST_QUEUE": self.ingest_queue})

    def log(self, name: str) -> str:
        """Tail of a process log (for assertion messages)."""
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


@contextmanager
def lab(folder: Path) -> Iterator[Lab]:
    """A :class:`Lab` closed (processes ended, namespaces deleted) whatever happens."""
    box = Lab(folder)
    try:
        yield box
    finally:
        box.close()


def purge_queues(broker_url: str, names: list[str]) -> None:
    """Delete this run's queues from the broker (left empty or not)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in names:
            for delete in (channel.queue_delete, channel.exchange_delete):
                try:
                    delete(name)
                except Exception:  # noqa: BLE001 - one never declared is fine
                    channel = conn.channel()
