"""What one run covers: target names, sites, projects, address ranges and the explicit host:port entries."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.lookup import LookupError_, find_agency, find_project, find_site
from cctv_monitor.models import Project, Site
from cctv_monitor.scan.errors import ScanTargetError
from probes.ranges import RangeError, parse_range, parse_ranges
from probes.targets import Target
from probes.vocab import host_of

__all__ = ["TARGET_KINDS", "NO_TARGET_KIND", "ScanScope", "resolve_scope", "site_networks", "parse_target",
           "target_name", "scope_of"]

TARGET_KINDS = ("site", "project", "agency", "range")

#: ``ScanRun.target_kind`` of a run that names no target (it covers only the devices it brought).
NO_TARGET_KIND = "import"


def parse_target(text: str) -> tuple[str, str]:
    """``"kind:value"`` -> (kind, value); a bare ``PROJECT/site`` is a site, a bare code a project."""
    text = (text or "").strip()
    if not text:
        raise ScanTargetError("the target is empty: write PROJECT/site, project:CODE, agency:CODE or range:CIDR")
    kind, sep, value = text.partition(":")
    if sep and kind in TARGET_KINDS:
        return kind, value.strip()
    if sep and kind.isalpha():
        raise ScanTargetError(f"unknown scan target kind {kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    return ("site" if "/" in text else "project"), text


def target_name(kind: str, value: str) -> str:
    """The canonical name of a run target, the inverse of :func:`parse_target`."""
    return f"{kind}:{value}"


@dataclass
class ScanScope:
    """What one run covers: sites and projects (for register and missing checks) and where to probe."""

    kind: str
    value: str
    sites: list[Site] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)  # whose register the run must account for
    cidrs_by_ports: dict[tuple[int, ...], list[str]] = field(default_factory=dict)  # sweep groups
    explicit: list[Target] = field(default_factory=list)  # host:port entries of the sites
    networks: list[Any] = field(default_factory=list)  # ip networks covered (known devices inside are probed)
    default_project: Project | None = None  # check: devices found belong to this project

    def covers(self, address: str | None) -> bool:
        """True when ``address`` (host or host:port) falls inside the scanned ranges."""
        if not address:
            return False
        host = host_of(address)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return any(t.host == host for t in self.explicit)
        return any(ip in net for net in self.networks) or any(t.host == host for t in self.explicit)

    @property
    def is_target(self) -> bool:
        """False for the empty scope of a run that names no target (it covers only what it brought)."""
        return self.kind in TARGET_KINDS


def site_networks(site: Site) -> list[Any]:
    """The IP networks of a site's address ranges (one parser: :mod:`probes.ranges`); bad entries cover nothing."""
    nets: list[Any] = []
    for entry in site.address_ranges or ():
        try:
            nets.extend(parse_range(str(entry)).networks)
        except RangeError:
            continue  # validated on import; an entry edited by hand to nonsense covers nothing
    return nets


def resolve_scope(session: Session, kind: str, value: str, *, default_ports: Sequence[int]) -> ScanScope:
    """Sites, projects and address ranges of a target; :class:`ScanTargetError` names what is wrong."""
    if kind not in TARGET_KINDS:
        raise ScanTargetError(f"unknown scan target kind {kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    value = (value or "").strip()
    if not value:
        raise ScanTargetError(f"--{kind} needs a value")
    scope = ScanScope(kind=kind, value=value)
    if kind == "range":
        try:
            entries = parse_ranges(value)
        except RangeError as exc:
            raise ScanTargetError(f"invalid address range: {exc}") from None
        for entry in entries:
            scope.networks.extend(entry.networks)
            if entry.sweep:
                scope.cidrs_by_ports.setdefault(tuple(default_ports), []).append(entry.text)
            else:
                scope.explicit.append(Target(entry.host or "", entry.port or default_ports[0]))
        return scope
    try:  # an unknown code gets the same "did you mean" hint as in check and devices
        if kind == "site":
            scope.sites = [find_site(session, value)]
        elif kind == "project":
            project = find_project(session, value)
            scope.projects = [project]
            scope.sites = list(project.sites)
        elif kind == "agency":
            scope.projects = list(find_agency(session, value).projects)
            scope.sites = [s for p in scope.projects for s in p.sites]
    except LookupError_ as exc:
        raise ScanTargetError(str(exc)) from None
    for site in scope.sites:
        ports = tuple(int(p) for p in (site.ports or default_ports))
        for text in site.address_ranges or ():
            try:
                entry = parse_range(str(text))
            except RangeError as exc:
                raise ScanTargetError(f"site {site.code} of project {site.project.code}: {exc} (fix the project "
                                      "file and import it again)") from None
            scope.networks.extend(entry.networks)
            if entry.sweep:
                scope.cidrs_by_ports.setdefault(ports, []).append(entry.text)
            else:
                scope.explicit.append(Target(entry.host or "", entry.port or ports[0]))
    if not scope.sites:
        raise ScanTargetError(f"{kind} {value!r} has no sites with address ranges to scan")
    return scope


class _RunLike(Protocol):
    target: str | None
    source: str
    default_project: str | None


def scope_of(session: Session, run: _RunLike, *, default_ports: Sequence[int]) -> ScanScope:
    """The scope a run covers: its target's, or an empty one (then it covers only what it brings)."""
    if run.target:
        kind, value = parse_target(run.target)
        scope = resolve_scope(session, kind, value, default_ports=default_ports)
    else:
        scope = ScanScope(kind=NO_TARGET_KIND, value=run.source)
    if run.default_project:
        scope.default_project = session.scalar(select(Project).where(Project.code == run.default_project))
    return scope
