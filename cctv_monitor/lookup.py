"""Find an agency, project or site by the code a user typed; an unknown code gets a "did you mean" hint.

``scan``, ``check``, ``devices`` and the spreadsheet import share these, so a typo gets the same answer
everywhere.
"""

from __future__ import annotations

import difflib
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.models import Agency, Project, Site, SpecProfile

__all__ = ["LookupError_", "did_you_mean", "existing_codes", "find_agency", "find_profile", "find_project",
           "find_site"]


class LookupError_(LookupError):
    """No row with the given code; the message names it and suggests close matches."""


def did_you_mean(value: str, choices: Iterable[str], *, limit: int = 3, cutoff: float = 0.6) -> str:
    """`` (did you mean 'CR-MS-2568-015'?)`` for the closest choices, or '' when none is close."""
    options = [c for c in dict.fromkeys(choices) if c]
    by_lower = {c.casefold(): c for c in options}
    exact = by_lower.get(value.strip().casefold())
    if exact is not None and exact != value:
        return f" (did you mean {exact!r}?)"
    close = difflib.get_close_matches(value.strip().casefold(), list(by_lower), n=limit, cutoff=cutoff)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?)"


def find_project(session: Session, code: str) -> Project:
    """The project with ``code``; :class:`LookupError_` with a hint otherwise."""
    project = session.scalar(select(Project).where(Project.code == code))
    if project is None:
        hint = did_you_mean(code, session.scalars(select(Project.code)))
        raise LookupError_(f"no project with code {code!r}{hint} (list them with: cctv-monitor projects; "
                           "import one with: cctv-monitor import-projects FILE)")
    return project


def find_agency(session: Session, code: str) -> Agency:
    """The agency with ``code``; :class:`LookupError_` with a hint otherwise."""
    agency = session.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        hint = did_you_mean(code, session.scalars(select(Agency.code)))
        raise LookupError_(f"no agency with code {code!r}{hint}")
    return agency


def find_site(session: Session, value: str) -> Site:
    """The site ``CODE`` or ``PROJECT/CODE``; :class:`LookupError_` when unknown or ambiguous."""
    project_code, sep, site_code = value.rpartition("/")
    query = select(Site).where(Site.code == site_code)
    if sep:
        query = query.join(Project).where(Project.code == project_code)
    sites = list(session.scalars(query))
    if not sites:
        known = [f"{p}/{s}" if sep else s for s, p in session.execute(select(Site.code, Project.code).join(Project))]
        raise LookupError_(f"no site with code {value!r}{did_you_mean(value, known)}")
    if len(sites) > 1:
        names = ", ".join(f"{s.project.code}/{s.code}" for s in sites)
        raise LookupError_(f"site code {value!r} is used by several projects; write PROJECT/SITE: {names}")
    return sites[0]


def existing_codes(session: Session) -> list[str]:
    """Codes of every project in the database."""
    return list(session.scalars(select(Project.code)))


def find_profile(session: Session, text: str) -> SpecProfile:
    """The spec profile whose code or Thai name is ``text``; :class:`LookupError_` lists the valid codes."""
    profiles = list(session.scalars(select(SpecProfile).order_by(SpecProfile.code)))
    wanted = " ".join(str(text).split())
    for profile in profiles:
        if wanted.casefold() in (profile.code.casefold(), " ".join((profile.name_th or "").split()).casefold()):
            return profile
    valid = "; ".join(f"{p.code} ({p.name_th})" if p.name_th else p.code for p in profiles) or "none imported yet"
    # A short Thai label ("กล้องภายนอกอาคาร") is often part of one profile's full name: suggest that profile.
    core = wanted.removeprefix("กล้อง").strip()
    partial = [p.code for p in profiles if core and core in (p.name_th or "")]
    hint = f" (did you mean {partial[0]!r}?)" if len(partial) == 1 else did_you_mean(wanted, [p.code for p in profiles])
    raise LookupError_(f"{text!r} is not a spec profile{hint}; write one of the codes or its full Thai name: "
                       f"{valid}")
