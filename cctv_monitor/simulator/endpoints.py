"""A running simulated camera as a client sees it: what the launcher prints and the test helpers return.

Its own module so that the launcher and the test helpers both import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cctv_monitor.simulator.fleet import CameraSpec


@dataclass
class SimCamera:
    """A running simulated camera as a client sees it."""

    name: str
    host: str
    port: int
    device_url: str
    username: str
    password: str
    rtsp_urls: dict[str, str] = field(default_factory=dict)
    spec: CameraSpec | None = None
    netns: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON line of ``cctv-monitor simulate --json``."""
        return {"name": self.name, "host": self.host, "port": self.port, "device_url": self.device_url,
                "username": self.username, "password": self.password, "rtsp_urls": self.rtsp_urls,
                **({"netns": self.netns} if self.netns else {})}
