"""Where a project's cameras may be: the address ranges of its sites (pure, no Flask, no database).

A register match (MAC or serial) and a known device's identity only count at an address inside the
project's own site ranges: otherwise a device in agency A's range reporting agency B's registered MAC
would be merged into B's camera, moved to A's address and probed there with B's credentials.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from probes.vocab import host_of

__all__ = ["ProjectRanges"]


class ProjectRanges:
    """Site networks per project id; answers "does this address lie in that project's ranges?"."""

    def __init__(self, pairs: Iterable[tuple[Any, int | None]]) -> None:
        """``pairs``: (ip network, project id) for every site range."""
        self._nets: dict[int, list[Any]] = {}
        for net, project_id in pairs:
            if project_id is not None:
                self._nets.setdefault(project_id, []).append(net)

    def holds(self, project_id: int | None, address: str | None) -> bool:
        """True when ``address`` (host or host:port) lies in a site range of project ``project_id``."""
        if project_id is None or not address:
            return False
        try:
            ip = ipaddress.ip_address(host_of(address))
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self._nets.get(project_id, ()))
