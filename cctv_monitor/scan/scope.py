"""What one run covers: target names, sites, projects, address ranges and the explicit host:port entries."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.models import Agency, Project, Site
from cctv_monitor.scan.errors import ScanTargetError
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
    """The IP networks of a site's address ranges (a bare host is a /32 or /128); bad entries skipped."""
    nets = []
    for entry in site.address_ranges or ():
        text = str(entry).strip()
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            try:
                nets.append(ipaddress.ip_network(host_of(text)))
            except ValueError:
                continue
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
        for part in value.split(","):
            part = part.strip()
            try:
                net = ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ScanTargetError(f"invalid address range {part!r}: {exc} (expected CIDR like 10.1.2.0/24)") \
                    from None
            scope.networks.append(net)
            scope.cidrs_by_ports.setdefault(tuple(default_ports), []).append(str(net))
        return scope
    if kind == "site":
        project_code, sep, site_code = value.rpartition("/")
        query = select(Site).where(Site.code == site_code)
        if sep:
            query = query.join(Project).where(Project.code == project_code)
        sites = list(session.scalars(query))
        if not sites:
            raise ScanTargetError(f"no site with code {value!r} (see the project files in config/projects)")
        if len(sites) > 1:
            names = ", ".join(f"{s.project.code}/{s.code}" for s in sites)
            raise ScanTargetError(f"site code {value!r} is used by several projects; write PROJECT/SITE: {names}")
        scope.sites = sites
    elif kind == "project":
        project = session.scalar(select(Project).where(Project.code == value))
        if project is None:
            raise ScanTargetError(f"no project with code {value!r} (import it first: see config/projects)")
        scope.projects = [project]
        scope.sites = list(project.sites)
    elif kind == "agency":
        agency = session.scalar(select(Agency).where(Agency.code == value))
        if agency is None:
            raise ScanTargetError(f"no agency with code {value!r}")
        scope.projects = list(agency.projects)
        scope.sites = [s for p in scope.projects for s in p.sites]
    for site in scope.sites:
        _add_site(scope, site, default_ports)
    if not scope.sites:
        raise ScanTargetError(f"{kind} {value!r} has no sites with address ranges to scan")
    return scope


def _add_site(scope: ScanScope, site: Site, default_ports: Sequence[int]) -> None:
    """Add a site's ranges (swept on its ports) and host:port entries (probed as given) to ``scope``."""
    ports = tuple(int(p) for p in (site.ports or default_ports))
    for entry in site.address_ranges or ():
        text = str(entry).strip()
        if "/" in text:
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise ScanTargetError(f"site {site.code}: invalid address range {text!r}: {exc}") from None
            scope.networks.append(net)
            scope.cidrs_by_ports.setdefault(ports, []).append(str(net))
            continue
        try:
            target = Target.parse(text, default_port=ports[0])
        except ValueError as exc:
            raise ScanTargetError(f"site {site.code}: invalid address {text!r}: {exc}") from None
        if ":" not in text:  # a bare host: sweep it on the site's ports
            scope.cidrs_by_ports.setdefault(ports, []).append(target.host)
        else:
            scope.explicit.append(target)
        try:
            scope.networks.append(ipaddress.ip_network(target.host))
        except ValueError:
            pass


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
