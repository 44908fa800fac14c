"""Scan engine: probe many devices with bounded concurrency overall and per host; yield as they complete.

One broken camera never stops the rest: every target ends in exactly one :class:`Observation`, whatever
happens to it. Stream checks (blocking PyAV packet readers) run in a thread pool sized from a memory budget
(:func:`probes.stream_budget.stream_concurrency`), under the same per-host limit and at most ``stream_per_site``
at once per site (a site's uplink, or a recorder serving many channels, must not be flooded).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

from probes.onvif import OnvifReadout, probe_onvif_detailed
from probes.results import Observation, ProbeStatus, StreamCheck, utc_now_iso
from probes.soap import DEFAULT_PER_HOST, HostLimiter
from probes.stream_budget import CHECKER_BASE_MB, DEFAULT_SAMPLE_S, current_rss_mb, stream_concurrency
from probes.stream_worker import StreamWorker
from probes.targets import Credential, Target, on_probed_host, without_userinfo
from probes.vendor import vendor_fallback

__all__ = ["Target", "Credential", "probe_many", "probe_many_sync", "probe_one", "ProgressCallback",
           "CredentialSource"]

LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, Observation], None]
CredentialSource = Sequence[Credential] | Callable[[Target], Sequence[Credential]]

#: Upper cap on stream checks at once (``CCTV_STREAM_WORKERS``); the memory budget usually decides first.
#: A check waits for video that arrives in real time (up to 2.5 s), so throughput is about checks in
#: flight / 2.6 s while CPU stays low (benchmarks/stream_checks.py).
DEFAULT_STREAM_WORKERS = 128
#: Memory the checking process may reach with its stream checks in flight (``CCTV_STREAM_MEMORY_MB``).
DEFAULT_STREAM_MEMORY_MB = 600.0
#: Stream checks at once per site (``CCTV_STREAM_PER_SITE``).
DEFAULT_STREAM_PER_SITE = 4


def site_of_host(host: str) -> str:
    """The site a camera belongs to when nothing else says: its IPv4 /24 (one site's LAN behind one uplink)."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if addr.version == 4:
        return str(ipaddress.ip_network(f"{addr}/24", strict=False))
    return str(ipaddress.ip_network(f"{addr}/64", strict=False))


def interleave_sites(targets: list[Target], site_of: Callable[[str], str]) -> list[Target]:
    """``targets`` reordered so that consecutive ones belong to different sites: each site's first target,
    then each site's second, and so on (stable: the order within a site, and among sites, is kept).

    A range list is site by site; in that order the probe tasks all held cameras of the same few sites and
    waited for those sites' stream slots (``stream_per_site``), so few checks ran while the memory budget
    allowed many more."""
    seen: dict[str, int] = {}
    ranks = []
    for target in targets:
        site = site_of(target.host)
        ranks.append(seen.get(site, 0))
        seen[site] = ranks[-1] + 1
    return [t for _, t in sorted(zip(ranks, targets), key=lambda pair: pair[0])]


def plan_stream_checks(memory_mb: float | None, cap: int | None, *, other_mb: float = 0.0) -> int:
    """Stream checks at once: as many packet readers as fit in the memory budget beside this process (and
    ``other_mb``, the stream checker process), at most ``cap``."""
    return stream_concurrency(memory_mb or DEFAULT_STREAM_MEMORY_MB, cap or DEFAULT_STREAM_WORKERS,
                              base_mb=current_rss_mb() + other_mb)


async def probe_many(targets: Iterable[Target], credentials: CredentialSource, *, concurrency: int = 64,
                     per_host_limit: int = DEFAULT_PER_HOST, with_streams: bool = False, timeout_s: float = 5.0,
                     stream_timeout_s: float = 10.0, progress: ProgressCallback | None = None,
                     stream_workers: int | None = None, stream_profiles: str = "first",
                     sample_s: float | None = None, stream_memory_mb: float | None = None,
                     stream_per_site: int = DEFAULT_STREAM_PER_SITE,
                     site_of: Callable[[str], str] = site_of_host) -> AsyncIterator[Observation]:
    """Probe every target (duplicates once); yield each observation as soon as it is complete.

    ``stream_profiles``: "first" checks the first profile that has a stream URI (the main stream),
    "all" checks every profile with a stream URI. Stream checks at once: what ``stream_memory_mb`` allows
    (default 600), at most ``stream_workers`` (default 128), at most ``stream_per_site`` per
    ``site_of(host)`` (default: the camera's /24). ``sample_s``: the stream time cap of a check.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if stream_profiles not in ("first", "all"):
        raise ValueError(f"stream_profiles must be 'first' or 'all', got {stream_profiles!r}")
    unique = list(dict.fromkeys(targets))
    total = len(unique)
    if not total:
        return
    if stream_per_site < 1:
        raise ValueError(f"stream_per_site must be at least 1, got {stream_per_site}")
    limiter = HostLimiter(per_host_limit)
    executor: StreamWorker | None = None
    slots = sites = None
    readers = 0
    if with_streams:
        # The checks run in a process of their own (probes/stream_worker.py: its own GIL), started now so
        # that its imports overlap the first ONVIF reads; its memory is the measured CHECKER_BASE_MB.
        executor = StreamWorker(stream_workers or DEFAULT_STREAM_WORKERS)
        readers = plan_stream_checks(stream_memory_mb, stream_workers, other_mb=CHECKER_BASE_MB)
        LOGGER.info("stream checks: %d at once (memory budget %s MB, cap %s), %d per site", readers,
                    stream_memory_mb or DEFAULT_STREAM_MEMORY_MB, stream_workers or DEFAULT_STREAM_WORKERS,
                    stream_per_site)
        # One slot per worker thread: a check's time limit starts when a thread is free to run it, so
        # checks waiting their turn are never reported as timed out.
        slots = asyncio.Semaphore(readers)
        sites = _SiteLimiter(HostLimiter(stream_per_site), site_of)
        unique = interleave_sites(unique, site_of)
    # ONVIF reads are bounded by ``concurrency``; cameras whose ONVIF read is done wait for a stream slot
    # without holding one, so enough tasks run to keep every stream slot busy.
    onvif_slots = asyncio.Semaphore(concurrency)
    pending = iter(unique)
    results: asyncio.Queue[Observation] = asyncio.Queue()

    async def worker() -> None:
        for target in pending:  # shared iterator: each worker takes the next target
            obs = await probe_one(target, credentials, limiter=limiter, timeout_s=timeout_s,
                                  with_streams=with_streams, stream_timeout_s=stream_timeout_s, executor=executor,
                                  stream_profiles=stream_profiles, sample_s=sample_s, stream_slots=slots,
                                  onvif_slots=onvif_slots, sites=sites)
            await results.put(obs)

    tasks = min(concurrency + readers, total)
    workers = [asyncio.create_task(worker(), name=f"probe-worker-{i}") for i in range(tasks)]
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
            # At once, so that even a cancelled wait below leaves a child that exits after its running checks.
            executor.close_input()
            await asyncio.to_thread(executor.close)


async def probe_one(target: Target, credentials: CredentialSource, *, limiter: HostLimiter | None = None,
                    timeout_s: float = 5.0, with_streams: bool = False, stream_timeout_s: float = 10.0,
                    executor: "ThreadPoolExecutor | StreamWorker | None" = None, stream_profiles: str = "first",
                    sample_s: float | None = None, stream_slots: asyncio.Semaphore | None = None,
                    onvif_slots: asyncio.Semaphore | None = None, sites: "_SiteLimiter | None" = None) -> Observation:
    """Probe one target (ONVIF, then streams if asked); always returns an observation.

    ``stream_slots`` (one per thread of ``executor``), ``onvif_slots`` and ``sites`` are what
    :func:`probe_many` passes so that a stream check's time limit only runs while a thread works on it.
    """
    started = time.monotonic()
    try:
        given = credentials(target) if callable(credentials) else credentials
        creds = list(given)
        # ``skipped``: credentials the device rejected before, left out by the caller (lock-out safety).
        skipped = int(getattr(given, "skipped", 0))
        async with (onvif_slots if onvif_slots is not None else contextlib.nullcontext()):
            readout = await probe_onvif_detailed(target, creds, timeout_s=timeout_s, limiter=limiter,
                                                 skipped=skipped)
            # Vendor hook: Hikvision/Dahua with ONVIF off, absent or refusing, and recorders' channels.
            readout = await vendor_fallback(target, creds, readout, timeout_s=timeout_s, limiter=limiter)
        if with_streams and readout.observation.profiles:
            checks = await _stream_checks(readout, limiter, stream_timeout_s, executor, stream_profiles, sample_s,
                                          stream_slots, sites)
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
                         executor: "ThreadPoolExecutor | StreamWorker | None", which: str, sample_s: float | None,
                         slots: asyncio.Semaphore | None = None, sites: "_SiteLimiter | None" = None
                         ) -> list[StreamCheck]:
    sample_s = sample_s or DEFAULT_SAMPLE_S
    profiles = [p for p in readout.observation.profiles if p.token in readout.stream_uris]
    if which == "first":
        # A recorder: the main stream of every camera behind it that is online, each read through the recorder
        # (one at a time, under the same host and site limits); any other device: its first stream.
        mains = {c.profiles[0].token for c in readout.observation.channels if c.profiles and c.online is not False}
        profiles = [p for p in profiles if p.token in mains] if mains else profiles[:1]
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
            kwargs = {"uri": uri, "username": who, "password": secret, "profile_token": prof.token,
                      "sample_s": sample_s, "timeout_s": timeout_s}
            check = await _one_check(kwargs, host, limiter, executor, slots, sites, limit, loop)
            if check.ok:
                break
        assert check is not None
        checks.append(check)
    return checks


async def _one_check(kwargs: dict[str, Any], host: str, limiter: HostLimiter | None,
                     executor: "ThreadPoolExecutor | StreamWorker | None", slots: asyncio.Semaphore | None,
                     sites: "_SiteLimiter | None", limit: float, loop: asyncio.AbstractEventLoop) -> StreamCheck:
    """One stream check in the checker process (or a thread), under the site and host limits."""

    async def in_thread() -> StreamCheck:
        if slots is not None:
            await slots.acquire()  # wait for a free thread before the clock starts
        try:
            if isinstance(executor, StreamWorker):
                future = asyncio.wrap_future(executor.submit(**kwargs))
            else:  # probe_one alone: in this process (PyAV is imported only when streams are checked)
                from probes.stream import check_stream

                future = loop.run_in_executor(executor, functools.partial(check_stream, **kwargs))
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        if slots is not None:
            # The slot is free again only when the thread is: a check abandoned on timeout still
            # occupies its thread until FFmpeg gives up.
            future.add_done_callback(lambda _f: slots.release())
        return await asyncio.wait_for(asyncio.shield(future), limit)

    try:
        async with contextlib.AsyncExitStack() as held:
            if sites is not None:  # the site slot first: a camera waiting for its site holds no thread
                await held.enter_async_context(sites.acquire(host))
            if limiter is not None:
                await held.enter_async_context(limiter.acquire(host))
            return await in_thread()
    except TimeoutError:
        return StreamCheck(kwargs["profile_token"], ok=False, error=f"stream check exceeded {limit:g} s")


class _SiteLimiter:
    """At most N stream checks at once per site (a HostLimiter keyed by site instead of host)."""

    def __init__(self, limiter: HostLimiter, site_of: Callable[[str], str]) -> None:
        self.limiter, self.site_of = limiter, site_of

    def acquire(self, host: str) -> Any:
        """Async context manager holding one slot of ``host``'s site."""
        return self.limiter.acquire(self.site_of(host))


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

