"""SIGINT and SIGTERM stop the long-running commands (``demo``, ``serve``, ``worker``) the same clean way.

A process started with SIGINT ignored (``nohup``, ``cmd &`` in a script, some CI runners) inherits
``SIG_IGN``, and Python then installs no handler that raises :class:`KeyboardInterrupt`: Ctrl-C would do
nothing and SIGTERM would kill the process without its clean-up (fleet, RTSP child, scheduler, port).
:func:`stop_signals` installs handlers of its own for both signals, whatever the process inherited.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

LOGGER = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_state = {"depth": 0, "stopping": False}


def _handler(signum: int, frame: Any) -> None:
    if _state["stopping"]:
        # a second Ctrl-C must not break the clean-up that the first one started
        LOGGER.warning("signal %s: already stopping, clean-up continues", signum)
        return
    _state["stopping"] = True
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def stop_signals() -> Iterator[None]:
    """Inside the block the first SIGINT or SIGTERM raises KeyboardInterrupt; later ones wait for clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (commands run from test threads)
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _state["stopping"] = False
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

