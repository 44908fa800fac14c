"""Scan engine: probe many devices with bounded concurrency overall and per host; yield as they complete.

One broken camera never stops the rest: every target ends in exactly one :class:`Observation`, whatever
happens to it. Stream checks (blocking OpenCV) run in a small thread pool under the same per-host limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Callable, Iterable, Sequence

from probes.onvif import OnvifReadout, probe_onvif_detailed
from probes.results import Observation, ProbeStatus, StreamCheck, utc_now_iso
from probes.soap import HostLimiter
from probes.targets import Credential, Target, on_probed_host, without_userinfo
from probes.vendor import vendor_fallback

__all__ = ["Target", "Credential", "probe_many", "probe_many_sync", "probe_one", "ProgressCallback",
           "CredentialSource"]

LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, Observation], None]
CredentialSource = Sequence[Credential] | Callable[[Target], Sequence[Credential]]

#: Stream checks at once by default: each holds an FFmpeg session (~20 MB) and samples 2 s of video that
#: arrives in real time, so throughput is about workers / 2.1 s; 12 give ~5 streams/s on 2 cores using
#: ~0.08 CPU-s per stream (benchmarks/stream_checks.py).
DEFAULT_STREAM_WORKERS = 12


async def probe_many(targets: Iterable[Target], credentials: CredentialSource, *, concurrency: int = 64,
                     per_host_limit: int = 2, with_streams: bool = False, timeout_s: float = 5.0,
                     stream_timeout_s: float = 10.0, progress: ProgressCallback | None = None,
                     stream_workers: int | None = None, stream_profiles: str = "first",
                     sample_s: float = 2.0) -> AsyncIterator[Observation]:
    """Probe every target (duplicates once); yield each observation as soon as it is complete.

    ``stream_profiles``: "first" checks the first profile that has a stream URI (the main stream),
    "all" checks every profile with a stream URI.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if stream_profiles not in ("first", "all"):
        raise ValueError(f"stream_profiles must be 'first' or 'all', got {stream_profiles!r}")
    unique = list(dict.fromkeys(targets))
    total = len(unique)
    if not total:
        return
    limiter = HostLimiter(per_host_limit)
    executor = slots = None
    if with_streams:
        workers = stream_workers or min(concurrency, DEFAULT_STREAM_WORKERS)
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stream-check")
        # One slot per worker thread: a check's time limit starts when a thread is free to run it, so
        # checks waiting their turn are never reported as timed out.
        slots = asyncio.Semaphore(workers)
    pending = iter(unique)
    results: asyncio.Queue[Observation] = asyncio.Queue()

    async def worker() -> None:
        for target in pending:  # shared iterator: each worker takes the next target
            obs = await probe_one(target, credentials, limiter=limiter, timeout_s=timeout_s,
                                  with_streams=with_streams, stream_timeout_s=stream_timeout_s, executor=executor,
                                  stream_profiles=stream_profiles, sample_s=sample_s, stream_slots=slots)
            await results.put(obs)

    workers = [asyncio.create_task(worker(), name=f"probe-worker-{i}") for i in range(min(concurrency, total))]
    done = 0
    try:
        while done < total:
            obs = await results.get()
            done += 1
            if progress is not None:
                try:
                    progress(done, total, obs)
                except Exception:  # noqa: BLE001 - a broken progress bar must not stop the scan
                    LOGGER.exception("progress callback failed")
            yield obs
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if executor is not None:
            # Running checks end on their own OpenCV timeouts; do not block the caller on them.
            executor.shutdown(wait=False, cancel_futures=True)


async def probe_one(target: Target, credentials: CredentialSource, *, limiter: HostLimiter | None = None,
                    timeout_s: float = 5.0, with_streams: bool = False, stream_timeout_s: float = 10.0,
                    executor: ThreadPoolExecutor | None = None, stream_profiles: str = "first",
                    sample_s: float = 2.0, stream_slots: asyncio.Semaphore | None = None) -> Observation:
    """Probe one target (ONVIF, then streams if asked); always returns an observation.

    ``stream_slots`` (one per thread of ``executor``) is what :func:`probe_many` passes so that a stream
    check's time limit only runs while a thread works on it.
    """
    started = time.monotonic()
    try:
        given = credentials(target) if callable(credentials) else credentials
        creds = list(given)
        # ``skipped``: credentials the device rejected before, left out by the caller (lock-out safety).
        readout = await probe_onvif_detailed(target, creds, timeout_s=timeout_s, limiter=limiter,
                                             skipped=int(getattr(given, "skipped", 0)))
        # Vendor hook: Hikvision/Dahua with ONVIF off, absent or refusing, and recorders' channels.
        readout = await vendor_fallback(target, creds, readout, timeout_s=timeout_s, limiter=limiter)
        if with_streams and readout.observation.profiles:
            checks = await _stream_checks(readout, limiter, stream_timeout_s, executor, stream_profiles, sample_s,
                                          stream_slots)
            return readout.observation.with_updates(stream_checks=tuple(checks),
                                                    duration_s=round(time.monotonic() - started, 3)).sanitised()
        return readout.observation
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one broken camera never stops a scan
        LOGGER.exception("%s: probe failed unexpectedly", target.address)
        return Observation(address=target.address, status=ProbeStatus.ERROR, observed_at=utc_now_iso(),
                           error=f"unexpected {type(exc).__name__}: {exc}", xaddrs=target.xaddrs,
                           duration_s=round(time.monotonic() - started, 3)).sanitised()


async def _stream_checks(readout: OnvifReadout, limiter: HostLimiter | None, timeout_s: float,
                         executor: ThreadPoolExecutor | None, which: str, sample_s: float,
                         slots: asyncio.Semaphore | None = None) -> list[StreamCheck]:
    profiles = [p for p in readout.observation.profiles if p.token in readout.stream_uris]
    if which == "first":
        profiles = profiles[:1]
    user = readout.credential.username if readout.credential else None
    password = readout.credential.password if readout.credential else None
    loop = asyncio.get_running_loop()
    # OpenCV enforces its own open/read timeouts; this outer bound only catches a thread stuck beyond them.
    limit = timeout_s + sample_s + 10
    checks: list[StreamCheck] = []
    probed = readout.observation.host
    for prof in profiles:  # one stream at a time per camera: old cameras struggle with parallel sessions
        given = readout.stream_uris[prof.token]
        # A credential only ever goes to the probed host: a URI naming another host is tried on the probed
        # host (same port, path, query) with the credential, and on the named host only without one.
        local_uri, named = on_probed_host(given, probed)
        attempts = [(local_uri, probed, user, password)]
        if named is not None:
            attempts.append((without_userinfo(given), named, None, None))
        check: StreamCheck | None = None
        for uri, host, who, secret in attempts:
            check = await _one_check(uri, host, who, secret, prof.token, limiter, timeout_s, executor, sample_s,
                                     slots, limit, loop)
            if check.ok:
                break
        assert check is not None
        checks.append(check)
    return checks


async def _one_check(uri: str, host: str, user: str | None, password: str | None, token: str,
                     limiter: HostLimiter | None, timeout_s: float, executor: ThreadPoolExecutor | None,
                     sample_s: float, slots: asyncio.Semaphore | None, limit: float,
                     loop: asyncio.AbstractEventLoop) -> StreamCheck:
    """One stream check on a worker thread, under the per-host limit; a stuck thread becomes an error."""
    from probes.stream import check_stream  # OpenCV is imported only when streams are checked

    def run() -> StreamCheck:
        return check_stream(uri, username=user, password=password, profile_token=token, sample_s=sample_s,
                            timeout_s=timeout_s)

    async def in_thread() -> StreamCheck:
        if slots is not None:
            await slots.acquire()  # wait for a free thread before the clock starts
        try:
            future = loop.run_in_executor(executor, run)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        if slots is not None:
            # The slot is free again only when the thread is: a check abandoned on timeout still
            # occupies its thread until OpenCV gives up.
            future.add_done_callback(lambda _f: slots.release())
        return await asyncio.wait_for(asyncio.shield(future), limit)

    try:
        if limiter is not None:
            async with limiter.acquire(host):
                return await in_thread()
        return await in_thread()
    except TimeoutError:
        return StreamCheck(token, ok=False, error=f"stream check exceeded {limit:g} s")


def probe_many_sync(targets: Iterable[Target], credentials: CredentialSource, **kwargs: object) -> list[Observation]:
    """Blocking :func:`probe_many` for sync callers (CLI, scheduler jobs): all observations, completion order."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("probe_many_sync() called from a running event loop; use 'async for ... in probe_many()'")

    async def collect() -> list[Observation]:
        return [obs async for obs in probe_many(targets, credentials, **kwargs)]  # type: ignore[arg-type]

    return asyncio.run(collect())

