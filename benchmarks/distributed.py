"""Zone workers on Celery + RabbitMQ: one worker on three zone queues versus three workers, and ingest alone.

Three simulated fleets on loopback (no namespaces needed), each the cameras of one zone, every request
delayed (200 ms by default, like a slow district link). The same distributed scan runs twice: once with ONE
zone worker consuming all three queues, once with THREE workers, one per zone; every worker has the same
per-unit probe concurrency (64). Then ingest alone: the observations of the last run recorded again into a
new run as the ingest worker records them, without the broker: the dicts of batch messages, 64 a unit,
through its task's code (``Ingest.batch``), with its collector setting (``collect_less``); three such passes,
the median counts (observations/s into the database). Prints cameras/s for each, the
ratio, the ingest rate, and ``lost: N`` / ``duplicated: N`` (cameras missing from or doubled in the
database after the runs), then the targets.

    python benchmarks/distributed.py [--cameras 1000] [--delay-ms 200] [--db-url URL] [--amqp-unix SOCK]
    python benchmarks/distributed.py --ingest-only [--cameras 1000] [--db-url URL]

``--ingest-only`` measures the ingest alone, without RabbitMQ and without the two scans: a small fleet
(32 cameras, no delay) is probed once on loopback, its observations are copied to the cameras of the
three zones (each copy with the camera's own address, MACs, serial and names), recorded once into a run
(the devices appear, as the scans make them: "first sight"), then written again into a new run exactly as
after the scans; it prints the same ``ingest alone`` line (run it inside a network namespace: it probes).

``--db-url`` defaults to CCTV_TEST_PG_URL (a fresh schema is made and dropped). RabbitMQ: 127.0.0.1:5672,
or ``--amqp-unix`` (a Unix socket bridged to it, when this runs in a namespace that cannot reach it).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = str(Path(sys.executable).parent / "cctv-monitor")
BASES = ("127.17.0.0", "127.18.0.0", "127.19.0.0")
#: Ingest-alone passes (runs over the same cameras); the median is the figure compared with the target.
PASSES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Procs:
    """Started processes, each in its own session; all ended (with their groups) by :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.items = folder, []

    def start(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        out = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed right after the fork
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        out.close()
        self.items.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def close(self) -> None:
        while self.items:
            self.stop(self.items.pop())


def _zone_fleet(cameras: int, base: str, zone: int, *, delay_ms: float = 0.0, name: str = "generated") -> dict:
    """``generate_fleet`` with MACs and serials of this zone's own: the generator derives them from the last
    two octets of the address, so the three zones would otherwise repeat each other's, making every camera
    of zones 2 and 3 an identity conflict (a shared MAC, a serial of another project) as no real fleet is."""
    from cctv_monitor.simulator.fleet import generate_fleet

    fleet = generate_fleet(cameras, base=base, delay_ms=delay_ms, name=name)
    for i, camera in enumerate(fleet["cameras"], 1):
        camera["macs"] = [f"{mac[:9]}{zone:02x}{mac[11:]}" for mac in camera["macs"]]  # oui:ZZ:xx:yy
        camera["serial"] = f"GEN{zone}{i:07d}"
    return fleet


def _pg_schema(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def _fleet_ready(log: Path, launcher: subprocess.Popen, timeout: float, what: str) -> None:
    """Wait for a fleet's "ready" line; a launcher that ended first (e.g. its addresses are taken by another
    run on this machine) ends the benchmark with its own message instead of a wait to the timeout."""
    def ready() -> bool:
        if log.exists() and b'"ready"' in log.read_bytes():
            return True
        if launcher.poll() is not None:
            raise SystemExit(f"{what} ended before it was ready: {log.read_text(errors='replace')[-500:].strip()}")
        return False
    _wait(ready, timeout, what)


def _workers_up(broker: str, zones: list[str], count: int) -> None:
    """Wait until ``count`` zone workers answer ``inspect ping`` for every one of ``zones``."""
    from cctv_monitor.zone_status import zone_workers

    def up() -> bool:
        answer = zone_workers(broker, max_age_s=0) or {}
        return len({n for z in zones for n in answer.get(z, [])}) == count and all(answer.get(z) for z in zones)

    _wait(up, 120, f"{count} zone worker(s)")


def _scan(app, session, everything: str, timeout: float) -> tuple[int, float]:  # noqa: ANN001
    from cctv_monitor.dispatch import dispatch_scan
    from cctv_monitor.models import ScanRun

    started = time.monotonic()
    run_id = dispatch_scan(app, "range", everything)

    def closed() -> bool:
        session.expire_all()
        return session.get(ScanRun, run_id).state != "running"

    _wait(closed, timeout, f"run {run_id}")
    return run_id, time.monotonic() - started


def main() -> int:
    """Run the benchmark; prints figures and targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000, help="cameras per zone (3 zones)")
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64, help="cameras probed at once per worker")
    parser.add_argument("--db-url", default=os.environ.get("CCTV_TEST_PG_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--amqp-unix", help="Unix socket bridged to RabbitMQ (else 127.0.0.1:5672 directly)")
    parser.add_argument("--ingest-only", action="store_true",
                        help="measure only the ingest into PostgreSQL (no broker, no scans; see above)")
    args = parser.parse_args()
    if not 1 <= args.cameras <= 5000:
        parser.error("--cameras must be 1-5000")
    from cctv_monitor.scan.ingest import collect_less

    collect_less()  # the ingest measured here runs as in the ingest worker, which sets this at start
    if args.ingest_only:
        return _ingest_only(args)

    from cctv_monitor.zones import create_zone_key

    folder = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    procs = Procs(folder)
    db_url, schema = _pg_schema(args.db_url)
    tag = f"bench{uuid.uuid4().hex[:6]}"
    zones = [f"{tag}-z{i}" for i in (1, 2, 3)]
    broker = "amqp://guest:guest@127.0.0.1:5672//"
    try:
        if args.amqp_unix:
            port = _free_port()
            procs.start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{args.amqp_unix}"],
                        "relay")
            broker = f"amqp://guest:guest@127.0.0.1:{port}//"
            time.sleep(0.5)
        keys = folder / "keys"
        ranges, cameras = [], set()
        launchers: dict[str, subprocess.Popen] = {}
        for number, (zone, base) in enumerate(zip(zones, BASES), 1):
            create_zone_key(keys, zone)
            fleet = _zone_fleet(args.cameras, base, number, delay_ms=args.delay_ms, name=zone)
            (folder / f"{zone}.yaml").write_text(yaml.safe_dump(fleet))
            launchers[zone] = procs.start([sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet",
                                           str(folder / f"{zone}.yaml"), "--json", "--no-streams"], f"fleet-{zone}")
            cameras |= {f"{c['host']}:8000" for c in fleet["cameras"]}
            ranges.append(_ranges(fleet, base))
        for zone in zones:
            _fleet_ready(folder / f"fleet-{zone}.log", launchers[zone], 300, f"fleet {zone}")

        from sqlalchemy import func, select

        from cctv_monitor import create_app
        from cctv_monitor.db import get_db
        from cctv_monitor.models import Observation

        instance = folder / "instance"
        config = {"DATABASE_URL": db_url, "SECRET_KEY": "bench-secret", "INSTANCE_PATH": str(instance),
                  "BROKER_URL": broker, "ZONE_KEY_DIR": str(keys), "INGEST_QUEUE": f"ingest.{tag}",
                  "ONVIF_PORTS": [8000], "ZONE_UNIT_SIZE": args.concurrency, "PROBE_CONCURRENCY": args.concurrency,
                  "RUN_DEADLINE_S": 3600}
        app = create_app(config)
        session = get_db(app).sessionmaker()
        _inventory(app, session, zones, ranges, args.cameras)
        env = {"CCTV_DATABASE_URL": db_url, "CCTV_SECRET_KEY": "bench-secret", "CCTV_INSTANCE_PATH": str(instance),
               "CCTV_BROKER_URL": broker, "CCTV_INGEST_QUEUE": f"ingest.{tag}"}
        procs.start([CLI, "ingest-worker", "--name", f"{tag}-ingest@bench"], "ingest", env)
        worker_env = {"CCTV_BROKER_URL": broker, "CCTV_PROBE_CONCURRENCY": str(args.concurrency)}
        everything = ",".join(ranges)
        timeout = 120 + 3 * args.cameras * args.delay_ms / 1000

        one = procs.start([CLI, "zone-worker", "--zone", ",".join(zones), "--key-dir", str(keys),
                           "--name", f"zone-{'+'.join(zones)}@bench-one"], "worker-one", worker_env)
        _workers_up(broker, zones, 1)  # the clock runs from the scan, not from the workers' start-up
        run_one, secs_one = _scan(app, session, everything, timeout)
        procs.stop(one)
        three = [procs.start([CLI, "zone-worker", "--zone", z, "--key-dir", str(keys)], f"worker-{z}", worker_env)
                 for z in zones]
        _workers_up(broker, zones, 3)
        run_three, secs_three = _scan(app, session, everything, timeout)
        for proc in three:
            procs.stop(proc)

        def answered(run_id: int) -> tuple[int, int, int]:
            rows = list(session.scalars(select(Observation.address).where(Observation.scan_run_id == run_id)))
            return len(rows), len(set(rows)), len(cameras - set(rows))

        total_one, distinct_one, lost_one = answered(run_one)
        total_three, distinct_three, lost_three = answered(run_three)
        rate_one, rate_three = distinct_one / secs_one, distinct_three / secs_three
        print(f"one worker, 3 queues      {distinct_one:6d} cameras in {secs_one:7.1f} s  {rate_one:7.1f} cameras/s")
        print(f"three workers, one a zone {distinct_three:6d} cameras in {secs_three:7.1f} s  "
              f"{rate_three:7.1f} cameras/s")
        ratio = rate_three / rate_one if rate_one else 0.0
        print(f"ratio three / one: {ratio:.2f}x")

        ingest_rate = _ingest_alone(app, session, run_three)
        print(f"ingest alone: {ingest_rate:.0f} observations/s into PostgreSQL (median of {PASSES} passes)")
        lost = lost_one + lost_three
        duplicated = (total_one - distinct_one) + (total_three - distinct_three)
        devices = session.scalar(select(func.count()).select_from(
            select(Observation.device_id).where(Observation.scan_run_id == run_three).distinct().subquery()))
        duplicated += max(0, distinct_three - devices)
        print(f"lost: {lost}")
        print(f"duplicated: {duplicated}")
        print(f"targets: three workers >= 2.5x one: {'met' if ratio >= 2.5 else 'NOT met'}; ingest >= 2000 "
              f"observations/s: {'met' if ingest_rate >= 2000 else 'NOT met'}; lost 0: "
              f"{'met' if lost == 0 else 'NOT met'}; duplicated 0: {'met' if duplicated == 0 else 'NOT met'}")
        session.close()
        app.extensions["cctv_db"].dispose()
        return 0
    finally:
        try:
            from kombu import Connection

            with Connection(broker, connect_timeout=5) as conn:
                channel = conn.channel()
                for name in [f"ingest.{tag}", *(f"probe.{z}" for z in zones)]:
                    for delete in (channel.queue_delete, channel.exchange_delete):
                        try:
                            delete(name)
                        except Exception:  # noqa: BLE001 - never declared
                            channel = conn.channel()
        except Exception as exc:  # noqa: BLE001 - cleanup only
            print(f"(queues of {tag} not removed: {exc})", file=sys.stderr)
        procs.close()
        _drop_schema(args.db_url, schema)


def _ranges(fleet: dict, base: str) -> str:
    """The smallest block from ``base`` that holds the fleet (the zone's site range)."""
    last = fleet["cameras"][-1]["host"]
    return f"{base}/{32 - (int(last.split('.')[2]) * 256 + int(last.split('.')[3])).bit_length()}"


def _inventory(app, session, zones: list[str], ranges: list[str], cameras: int) -> None:  # noqa: ANN001
    """One agency, the fixed_outdoor profile, and per zone a project with one site over its range."""
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.models import Agency, Project, Site, SpecProfile

    agency = Agency(code="bench", name_th="bench", province="เชียงราย")
    body = yaml.safe_load((ROOT / "config" / "profiles" / "fixed_outdoor.yaml").read_text())
    profile = SpecProfile(code="fixed_outdoor", name_th=body["name_th"], device_class=body["device_class"],
                          requirements=body)
    session.add_all([agency, profile])
    for i, (zone, net) in enumerate(zip(zones, ranges), 1):
        project = Project(code=f"BENCH-{i}", title_th="bench", agency=agency, spec_profile=profile,
                          approved_count=cameras)
        session.add(Site(project=project, code=f"z{i}", name_th=zone, address_ranges=[net], ports=[8000],
                         zone=zone, credentials_encrypted=encrypt_credentials(app, [("admin", "Demo#2567")])))
    session.commit()


def _copy_for(template, probed: dict, camera: dict):  # noqa: ANN001, ANN202
    """``template`` (the observation of fleet camera ``probed``) as if ``camera`` had answered it."""
    from dataclasses import replace
    from urllib.parse import quote

    def swap(text):  # noqa: ANN001, ANN202
        if not isinstance(text, str):
            return text
        for old, new in ((f"//{probed['host']}:", f"//{camera['host']}:"), (probed["name"], camera["name"]),
                         (quote(probed["scopes"]["name"]), quote(camera["scopes"]["name"])),
                         (probed["scopes"]["name"], camera["scopes"]["name"])):
            text = text.replace(old, new)
        return text

    device = template.device
    if device is not None:
        device = replace(device, serial=camera["serial"], macs=tuple(camera["macs"]), hostname=camera["name"],
                         name=camera["scopes"]["name"], scopes=tuple(swap(s) for s in device.scopes))
    profiles = tuple(replace(p, stream_uri=swap(p.stream_uri), snapshot_uri=swap(p.snapshot_uri))
                     for p in template.profiles)
    return replace(template, address=f"{camera['host']}:8000", device=device, profiles=profiles,
                   xaddrs=tuple(swap(x) for x in template.xaddrs))


def _ingest_only(args: argparse.Namespace) -> int:
    """Ingest alone into PostgreSQL: observations of a probed sample copied to every camera of 3 zones."""
    from cctv_monitor import create_app
    from cctv_monitor.credentials import CredentialList
    from cctv_monitor.db import get_db
    from cctv_monitor.scan.ingest import IngestCache, ingest
    from cctv_monitor.scan.runs import close_run, default_owner, open_run
    from cctv_monitor.scan.settings import ScanSettings
    from probes.scan import probe_many_sync
    from probes.targets import Credential, Target

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    procs = Procs(folder)
    db_url, schema = _pg_schema(args.db_url)
    zones = [f"ingest-z{i}" for i in (1, 2, 3)]
    try:
        fleets = [_zone_fleet(args.cameras, base, i, name=zone) for i, (zone, base) in enumerate(zip(zones, BASES), 1)]
        sample = _zone_fleet(min(32, args.cameras), BASES[0], 1, name="sample")
        (folder / "sample.yaml").write_text(yaml.safe_dump(sample))
        launcher = procs.start([sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet",
                                str(folder / "sample.yaml"), "--json", "--no-streams"], "fleet-sample")
        _fleet_ready(folder / "fleet-sample.log", launcher, 120, "the sample fleet")
        credentials = CredentialList([Credential("admin", "Demo#2567", "bench", "site")])
        probed = {o.address: o for o in probe_many_sync([Target(c["host"], 8000) for c in sample["cameras"]],
                                                        lambda _target: credentials)}
        templates = [(probed[f"{c['host']}:8000"], c) for c in sample["cameras"]]
        if not all(o.ok for o, _c in templates):
            raise SystemExit("the sample fleet did not answer: " + "; ".join(
                f"{o.address} {o.status.value} {o.error}" for o, _c in templates if not o.ok))
        observations = []
        for fleet in fleets:
            for i, camera in enumerate(fleet["cameras"]):
                template, original = templates[i % len(templates)]
                observations.append(_copy_for(template, original, camera).with_updates(
                    observation_id=uuid.uuid4().hex))
        procs.close()

        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench-secret", "INSTANCE_PATH": str(folder / "i"),
                          "ONVIF_PORTS": [8000]})
        session = get_db(app).sessionmaker()
        _inventory(app, session, zones, [_ranges(f, b) for f, b in zip(fleets, BASES)], args.cameras)
        factory, settings = get_db(app).sessionmaker, ScanSettings.from_mapping(app.config)
        ref = open_run(factory, target=None, source="worker", owner=default_owner(), client_run_id="first-sight",
                       settings=settings)
        cache = IngestCache()
        started = time.monotonic()
        for start in range(0, len(observations), 64):
            ingest(factory, ref, observations[start:start + 64], settings=settings, cache=cache)
        first = len(observations) / (time.monotonic() - started)
        cache.clear()
        close_run(factory, ref, complete=False, settings=settings)
        print(f"first sight (new devices): {first:.0f} observations/s into PostgreSQL")
        rate = _ingest_alone(app, session, ref.id)
        print(f"ingest alone: {rate:.0f} observations/s into PostgreSQL (median of {PASSES} passes of "
              f"{len(observations)} observations)")
        print(f"target: ingest >= 2000 observations/s: {'met' if rate >= 2000 else 'NOT met'}")
        session.close()
        app.extensions["cctv_db"].dispose()
        return 0
    finally:
        procs.close()
        _drop_schema(args.db_url, schema)


def _ingest_alone(app, session, run_id: int, passes: int = PASSES) -> float:  # noqa: ANN001
    """Observations/s as the ingest worker records them: the run's observations again (new ids) as the dicts
    of batch messages, 64 a unit, each through ``Ingest.batch`` (the ingest worker's task without the
    broker: checks, ``from_dict``, the ingest boundary, the unit counted done in the batch's transaction),
    with one ``Ingest`` (and its kept indexes) for all. Each pass is a distributed run with a unit more than
    it is fed, so it stays open while timed; it is closed after. ``passes`` runs (like successive scans of
    the same cameras); each pass's rate is printed and the median returned."""
    from datetime import timedelta

    from sqlalchemy import select

    from cctv_monitor.db import get_db
    from cctv_monitor.ingest import Ingest
    from cctv_monitor.models import Observation, ScanRun, ScanUnit, Site, utcnow
    from cctv_monitor.scan.runs import default_owner, hand_off, open_run
    from cctv_monitor.scan.settings import ScanSettings

    data = list(session.scalars(select(Observation.data).where(Observation.scan_run_id == run_id)))
    target = "range:" + ",".join(net for ranges in session.scalars(select(Site.address_ranges)) for net in ranges)
    factory = get_db(app).sessionmaker
    settings = ScanSettings.from_mapping(app.config)
    worker = Ingest(app)
    rates = []
    for number in range(passes):
        messages = [{**d, "observation_id": uuid.uuid4().hex} for d in data]
        chunks = [messages[start:start + 64] for start in range(0, len(messages), 64)]
        ref = open_run(factory, target=target, source="worker", owner=default_owner(),
                       client_run_id=f"ingest-{run_id}-{number}", settings=settings)
        hand_off(ref.id)  # closed by the ingest side, as a distributed run is
        with factory() as s:
            run = s.get(ScanRun, ref.id)
            run.distributed, run.deadline = True, utcnow() + timedelta(hours=1)
            units = [ScanUnit(scan_run_id=ref.id, zone="bench", seq=seq, state="queued", attempts=0, observations=0,
                              addresses=[m["address"] for m in chunk]) for seq, chunk in enumerate([*chunks, []])]
            s.add_all(units)
            s.commit()
            unit_ids = [u.id for u in units]
        started = time.monotonic()
        for unit_id, chunk in zip(unit_ids, chunks):
            worker.batch(ref.id, unit_id, chunk)
        elapsed = time.monotonic() - started
        worker.close(ref.id)
        rates.append(len(messages) / elapsed if elapsed else 0.0)
    worker.release()
    print(f"ingest passes ({len(data)} observations each): {', '.join(f'{r:.0f}' for r in rates)} observations/s")
    return sorted(rates)[len(rates) // 2]


if __name__ == "__main__":
    sys.exit(main())
