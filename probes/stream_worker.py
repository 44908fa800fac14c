"""Stream checks in a child process of their own, so packet readers and the ONVIF event loop do not share a GIL.

Why: in one process, 96 packet-reader threads each retake the GIL for every packet (about 2,400 times a
second at 25 fps), and the asyncio loop that reads ONVIF lost its turn so often that a scan with streams
reached half the stream checks per second of the stream checks alone (benchmarks/stream_checks.py).

The child runs ``python -c 'from probes.stream_worker import main; main()'``; requests and results are
length-prefixed pickles over its stdin and stdout (only this parent writes them). It exits when its stdin
closes, so it never outlives the scan.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from probes.results import StreamCheck

LOGGER = logging.getLogger(__name__)

__all__ = ["StreamWorker", "main"]

_HEADER = struct.Struct("!I")
_ROOT = str(Path(__file__).resolve().parent.parent)


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - written by our own parent process only


class StreamWorker:
    """A child process running :func:`probes.stream.check_stream` calls on a pool of ``threads``."""

    def __init__(self, threads: int) -> None:
        """Start the child without waiting for it (its imports take 1-2 s): requests queue in the pipe
        meanwhile. Its resident memory once ready is :attr:`rss_mb`."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen([sys.executable, "-c", "from probes.stream_worker import main; main()",
                                      str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._out, self._in = self.proc.stdin, self.proc.stdout
        self.rss_mb: float | None = None
        self.ready = threading.Event()
        self._ids = itertools.count()
        self._pending: dict[int, tuple[Future, str]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="stream-worker-results", daemon=True)
        self._reader.start()

    def submit(self, **kwargs: Any) -> Future:
        """Run ``check_stream(**kwargs)`` in the child; the future's result is its StreamCheck."""
        future: Future = Future()
        with self._lock:
            ident = next(self._ids)
            self._pending[ident] = (future, str(kwargs.get("profile_token", "")))
            try:
                _send(self._out, (ident, kwargs))
            except (OSError, ValueError):
                self._pending.pop(ident)
                future.set_result(StreamCheck(str(kwargs.get("profile_token", "")), ok=False,
                                              error="the stream checker process is gone"))
        return future

    def _read(self) -> None:
        try:
            self.rss_mb = float(_recv(self._in).get("rss_mb", 0.0))
        except (EOFError, OSError, pickle.UnpicklingError, AttributeError):
            pass
        self.ready.set()
        while True:
            try:
                ident, result = _recv(self._in)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                entry = self._pending.pop(ident, None)
            if entry is not None:
                entry[0].set_result(result)
        with self._lock:  # the child died: nobody waits forever
            pending, self._pending = self._pending, {}
        for future, token in pending.values():
            future.set_result(StreamCheck(token, ok=False, error="the stream checker process ended unexpectedly"))

    def close_input(self) -> None:
        """Close the child's stdin: it finishes the checks it runs and exits (never blocks)."""
        try:
            self._out.close()
        except OSError:
            pass

    def close(self) -> None:
        """Close the child's stdin, wait for it to exit; kill it if it does not within 30 s."""
        self.close_input()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        self._in.close()


def main() -> None:
    """Child side: read requests from stdin, run each on a thread, write results to stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from probes.stream import check_stream
    from probes.stream_budget import current_rss_mb

    requests, results = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the result pipe
    lock = threading.Lock()
    _send(results, {"ready": True, "rss_mb": current_rss_mb()})

    def run(ident: int, kwargs: dict) -> None:
        try:
            result = check_stream(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - check_stream never raises; this is the last guard
            result = StreamCheck(str(kwargs.get("profile_token", "")), ok=False, error=f"unexpected {exc!r}")
        with lock:
            _send(results, (ident, result))

    with ThreadPoolExecutor(max_workers=max(1, int(sys.argv[1])), thread_name_prefix="stream-check") as pool:
        while True:
            try:
                ident, kwargs = _recv(requests)
            except EOFError:
                break
            pool.submit(run, ident, kwargs)
