"""CCTV inventory and compliance monitor: the application package.

Importing it loads nothing else: the scan core (:mod:`cctv_monitor.scan`) and the zone worker run without
Flask. ``create_app`` (the app factory, :mod:`cctv_monitor.factory`) is loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cctv_monitor.factory import create_app

        return create_app
    raise AttributeError(f"module 'cctv_monitor' has no attribute {name!r}")
