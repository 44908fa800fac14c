"""The zone worker: consumes ``probe.<zone>``, probes with ``probes/`` only, publishes one batch per unit.

It holds no database and no database credentials, only the key files of its zones; every connection it
makes is outbound (the broker, the cameras of its network). A unit is a chunk of addresses of one zone with
the credentials that zone's sites may use there, sealed with the zone key (:mod:`cctv_monitor.zones`).
The unit's observations go to ``ingest`` as one batch, after which the unit is acknowledged (late ack): a
worker killed mid-unit has published nothing for it, and the broker hands the unit to another worker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any, Sequence

from celery import Celery

from cctv_monitor.credentials import CredentialList
from cctv_monitor.queueing import INGEST_BATCH, INGEST_QUEUE, PROBE_UNIT, UNIT_EVENT, make_celery
from cctv_monitor.zones import ZoneKeyError, check_zone, load_keys, queue_for, unseal
from probes.targets import Credential, Target

LOGGER = logging.getLogger(__name__)

__all__ = ["build_zone_app", "probe_work", "MAX_UNIT_RETRIES"]

#: Attempts after the first for a unit that fails inside the worker (not for a lost worker: that is a
#: redelivery, counted apart), each after the unit's ``retry_delay_s`` (default 2 s). The last failure is
#: recorded on the unit and the run goes on without it.
MAX_UNIT_RETRIES = 2


#: Publishing a batch rides out a partition of about ten minutes: the results are kept and sent when the
#: link is back (the unit's own acknowledgement is lost with the old connection, so the broker redelivers
#: the unit too; the ingest side stores it once).
PUBLISH_RETRY = {"max_retries": 120, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 5.0}


def _credential_source(work: dict[str, Any]):  # noqa: ANN202 - a closure matching probes.scan.CredentialSource
    table = [Credential(u, p, ref, source or "") for u, p, ref, source in work.get("creds", ())]
    per_host: dict[str, tuple[list[int], int]] = {e["h"]: (e.get("c", []), int(e.get("k", 0)))
                                                  for e in work.get("targets", ())}

    def source(target: Target) -> CredentialList:
        indexes, skipped = per_host.get(target.host, ([], 0))  # a host the unit does not name gets nothing
        out = CredentialList(table[i] for i in indexes)
        out.skipped = skipped
        return out

    return source


async def probe_work(work: dict[str, Any], options: dict[str, Any], id_prefix: str) -> list[dict[str, Any]]:
    """Sweep and probe the unit's addresses; every address ends in at most one observation (as dicts).

    Each observation's id is ``<id_prefix>:<address>``: the same unit probed again (redelivered after a
    lost worker or a partition) gives the same ids, so the ingest boundary stores it once.
    """
    from probes.discovery import sweep, sweep_timeouts
    from probes.scan import probe_many
    from probes.soap import DEFAULT_PER_HOST

    timeout_s = float(options.get("timeout_s", 5.0))
    connect_s, answer_s = sweep_timeouts(timeout_s)
    targets: dict[str, Target] = {}
    by_ports: dict[tuple[int, ...], list[str]] = {}
    for entry in work.get("targets", ()):
        ports = tuple(int(p) for p in entry["p"])
        if entry.get("s"):
            by_ports.setdefault(ports, []).append(entry["h"])
        else:
            target = Target(entry["h"], ports[0], entry.get("path") or "/onvif/device_service")
            targets.setdefault(target.address, target)
    for ports, hosts in by_ports.items():
        for target in await sweep(hosts, ports, concurrency=256, timeout_s=connect_s, answer_timeout_s=answer_s):
            targets.setdefault(target.address, target)
    observations = []
    async for obs in probe_many(list(targets.values()), _credential_source(work),
                                concurrency=int(options.get("concurrency", 64)),
                                per_host_limit=int(options.get("per_host_limit", DEFAULT_PER_HOST)),
                                with_streams=bool(options.get("with_streams")), timeout_s=timeout_s):
        observations.append(obs.with_updates(observation_id=f"{id_prefix}:{obs.address}").to_dict())
    return observations


def build_zone_app(broker_url: str, zones: Sequence[str], key_dir: str | Path) -> Celery:
    """The Celery app of a zone worker for ``zones`` (keys read now, so a missing one fails at start)."""
    zones = [check_zone(z) for z in zones]
    if not zones:
        raise ZoneKeyError("give at least one zone (--zone Z[,Z2])")
    keys = {z: load_keys(key_dir, z) for z in zones}
    app = make_celery(broker_url, zones=zones, name="cctv_zone_worker")
    app.conf.task_queues = [q for q in app.conf.task_queues if q.name in {queue_for(z) for z in zones}]
    worker_name = socket.gethostname()

    def event(options: dict[str, Any], run_id: int, unit_id: int, state: str, **extra: Any) -> None:
        app.send_task(UNIT_EVENT, args=[run_id, unit_id, state], kwargs=extra,
                      queue=str(options.get("ingest_queue") or INGEST_QUEUE), retry_policy=PUBLISH_RETRY)

    @app.task(name=PROBE_UNIT, bind=True, max_retries=MAX_UNIT_RETRIES, acks_late=True)
    def probe_unit(self, run_id: int, unit_id: int, zone: str, sealed: str,  # noqa: ANN001 - Celery's bound task
                   options: dict[str, Any]) -> int:
        """Probe one unit and publish its observations to ``ingest``; returns how many."""
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        event(options, run_id, unit_id, "running", worker=worker_name, redelivered=redelivered, retry=self.request.retries)
        if zone not in keys:
            event(options, run_id, unit_id, "failed", error=f"worker {worker_name} holds no key for zone {zone!r}")
            return 0
        try:
            work = unseal(keys[zone], sealed, zone)
        except ZoneKeyError as exc:  # retrying cannot help: the key is wrong
            event(options, run_id, unit_id, "failed", error=str(exc))
            return 0
        try:
            observations = asyncio.run(probe_work(work, options, f"zone-run{run_id}-unit{unit_id}"))
        except Exception as exc:  # noqa: BLE001 - recorded on the unit, retried a bounded number of times
            LOGGER.exception("unit %s of run %s failed", unit_id, run_id)
            message = f"{type(exc).__name__}: {exc}"
            if self.request.retries < MAX_UNIT_RETRIES:
                event(options, run_id, unit_id, "retrying", error=message, retry=self.request.retries + 1)
                raise self.retry(exc=exc, countdown=float(options.get("retry_delay_s", 2.0))) from None
            event(options, run_id, unit_id, "failed", error=f"after {MAX_UNIT_RETRIES + 1} attempts: {message}")
            return 0
        app.send_task(INGEST_BATCH, args=[run_id, unit_id, observations],
                      queue=str(options.get("ingest_queue") or INGEST_QUEUE), retry_policy=PUBLISH_RETRY)
        LOGGER.info("unit %s of run %s: %d observations published", unit_id, run_id, len(observations))
        return len(observations)

    return app
