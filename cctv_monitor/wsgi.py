"""Serving the Flask app over HTTP for ``serve`` and ``demo``: waitress, a production WSGI server.

Waitress rather than Flask's development server (which says itself it is not for production) or gunicorn
(which is built to be the process's main program, not a call inside a CLI command that also runs the
scheduler and, for the demo, the simulated fleet). Pure Python, no build step, maintained by the Pylons
project.
"""

from __future__ import annotations

import logging
from typing import Callable

from flask import Flask

LOGGER = logging.getLogger(__name__)


class ServeError(RuntimeError):
    """The server could not start (e.g. the port is taken)."""


def _cannot_listen(host: str, port: int, exc: OSError) -> ServeError:
    return ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                      "(another program uses the port? choose another with --port)")


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ServeError` now when ``host:port`` cannot be listened on (before minutes of set-up)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise _cannot_listen(host, port, exc) from exc


def serve_app(app: Flask, host: str, port: int, *, threads: int = 8,
              on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` on ``host:port`` until Ctrl-C or SIGTERM; returns after the server has closed its socket.

    ``on_ready(url)`` is called once the socket listens.
    """
    from waitress.server import create_server

    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="cctv-monitor",
                               # headers a client could forge; trust none unless a proxy is configured
                               clear_untrusted_proxy_headers=True)
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from exc

    from cctv_monitor.signals import stop_signals

    shown = f"[{host}]" if ":" in host else host
    # our own SIGINT/SIGTERM handlers (also when SIGINT was inherited as ignored): both raise
    # KeyboardInterrupt, on which waitress's loop shuts its worker threads down and returns
    with stop_signals():
        try:
            if on_ready is not None:
                on_ready(f"http://{shown}:{port}/")
            server.run()  # returns after KeyboardInterrupt/SystemExit, dispatcher shut down
        except KeyboardInterrupt:
            pass  # stopped before the loop ran: nothing more to stop than the socket
        finally:
            server.close()
            LOGGER.info("HTTP server on %s:%s stopped", host, port)
