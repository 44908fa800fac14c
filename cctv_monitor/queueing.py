"""The Celery app shared by the server, the ingest worker and the zone workers (no Flask, no database).

Queues: ``probe.<zone>`` carries work units to the workers of one zone; ``ingest`` carries observation
batches and unit events back to the ingest worker. Tasks are sent by name, so a zone worker registers only
the probing task and the server only the ingest tasks. Delivery is at-least-once: late acknowledgement,
requeue when a worker dies mid-unit, one unacknowledged unit per worker process; the ingest side is
idempotent, so a redelivered unit or batch stores nothing twice. No result backend: results travel as
messages on ``ingest``.
"""

from __future__ import annotations

import os
from typing import Iterable

from celery import Celery
from kombu import Exchange, Queue

from cctv_monitor.zones import queue_for

__all__ = ["INGEST_QUEUE", "PROBE_UNIT", "INGEST_BATCH", "UNIT_EVENT", "CLOSE_AT_DEADLINE", "make_celery"]

INGEST_QUEUE = "ingest"
PROBE_UNIT = "cctv.probe_unit"
INGEST_BATCH = "cctv.ingest_batch"
UNIT_EVENT = "cctv.unit_event"
CLOSE_AT_DEADLINE = "cctv.close_at_deadline"


def heartbeat_s() -> float:
    """AMQP heartbeat interval: ``CCTV_BROKER_HEARTBEAT_S`` (default 30; 0 turns heartbeats off)."""
    raw = os.environ.get("CCTV_BROKER_HEARTBEAT_S", "").strip()
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        raise ValueError(f"CCTV_BROKER_HEARTBEAT_S must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"CCTV_BROKER_HEARTBEAT_S must be 0 or more, got {raw!r}")
    return value


def make_celery(broker_url: str, *, zones: Iterable[str] = (), name: str = "cctv_monitor",
                ingest_queue: str = INGEST_QUEUE) -> Celery:
    """A Celery app on ``broker_url`` declaring the ingest queue and ``probe.<zone>`` for each of ``zones``.

    ``ingest_queue`` differs from ``ingest`` only to keep two installations (or test runs) on one broker
    apart; zone workers answer on the queue each unit names.
    """
    app = Celery(name, broker=broker_url, set_as_current=False)
    # One direct exchange per queue, named like it: what Celery creates for a queue named only at send time,
    # so the server, the zone workers and the ingest worker agree without sharing a queue list.
    names = [ingest_queue, *(queue_for(z) for z in zones)]
    queues = [Queue(n, Exchange(n, type="direct", durable=True), routing_key=n, durable=True) for n in names]
    app.conf.update(
        task_queues=queues,
        task_default_exchange=ingest_queue,
        task_default_queue=ingest_queue,
        task_default_routing_key=ingest_queue,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        # At-least-once: acknowledge after the task ran, requeue when the worker process is lost (kill -9,
        # power cut), and hold at most one unit per process so a dying worker strands nothing else.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_acks_on_failure_or_timeout=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a zone's link may be down for hours: keep trying
        # AMQP heartbeats find a dead zone link; the broker drops a connection silent for two intervals.
        broker_heartbeat=heartbeat_s(),
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        task_create_missing_queues=True,
        broker_transport_options={"confirm_publish": True},  # a batch is only "sent" once the broker has it
    )
    return app
