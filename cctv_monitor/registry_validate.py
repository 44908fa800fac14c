"""Project registry: validation of project data, shared by YAML and spreadsheets; every problem is collected."""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from cctv_monitor.credentials import password_env_problem
from cctv_monitor.crypto import Credential
from cctv_monitor.lookup import did_you_mean
from probes.ranges import RangeError, parse_range, split_ranges
from probes.vocab import channel_address, split_channel
from cctv_monitor.registry_records import (
    AgencyData,
    COMMITTEE_LEVELS,
    EntryData,
    ProjectData,
    SiteData,
    _CODE_RE,
    _MAC_HEX_RE,
    _Problems,
)


# ---------------------------------------------------------------------------------------------------
# Validation (shared by YAML and tables)


def _validate_project(data: Mapping[str, Any], problems: _Problems, base: tuple[Any, ...]) -> ProjectData | None:
    """Turn a project mapping into :class:`ProjectData`, adding a problem for every bad field."""
    before = len(problems.items)
    allowed = {"code", "title_th", "title_en", "agency", "approval_ref", "approval_date", "committee_level",
               "budget_thb", "spec_profile", "recorder_spec_profile", "approved_count", "sites", "register"}
    for key in data:
        if key not in allowed:
            problems.add(base + (key,), f"unknown field (allowed: {', '.join(sorted(allowed))})")
    code = _code(data, "code", problems, base)
    title_th = _str(data, "title_th", problems, base, required=True)
    agency = _validate_agency(data.get("agency"), problems, base + ("agency",))
    approval_date = _date(data.get("approval_date"), problems, base + ("approval_date",))
    committee = _str(data, "committee_level", problems, base)
    if committee is not None and committee not in COMMITTEE_LEVELS:
        problems.add(base + ("committee_level",), f"{committee!r}: expected one of {', '.join(COMMITTEE_LEVELS)}")
    budget = _decimal(data.get("budget_thb"), problems, base + ("budget_thb",))
    # A code or the profile's Thai name: which one is checked against the imported profiles when writing.
    profile = _str(data, "spec_profile", problems, base, required=True)
    recorder_profile = _str(data, "recorder_spec_profile", problems, base)
    approved = _int(data.get("approved_count"), problems, base + ("approved_count",), required=True, minimum=0)
    sites = _validate_sites(data.get("sites"), problems, base + ("sites",))
    register = _validate_register(data.get("register"), sites, problems, base + ("register",))
    if approved is not None and register is not None and len(register) > approved:
        problems.add(base + ("approved_count",), f"the register lists {len(register)} cameras, more than the "
                                                 f"{approved} approved")
    if len(problems.items) > before:
        return None
    return ProjectData(code=code, title_th=title_th, title_en=_str(data, "title_en", problems, base),
                       agency=agency, approval_ref=_str(data, "approval_ref", problems, base),
                       approval_date=approval_date, committee_level=committee, budget_thb=budget,
                       spec_profile=profile, recorder_spec_profile=recorder_profile, approved_count=approved,
                       sites=sites or [], register=register or [],
                       path=base, locate=problems.locate)


def _validate_agency(data: Any, problems: _Problems, base: tuple[Any, ...]) -> AgencyData | None:
    if not isinstance(data, Mapping):
        problems.add(base, "missing: give the agency (code, name_th, province, district)")
        return None
    for key in data:
        if key not in {"code", "name_th", "name_en", "province", "district", "subdistrict"}:
            problems.add(base + (key,), "unknown field")
    code = _code(data, "code", problems, base)
    name_th = _str(data, "name_th", problems, base, required=True)
    province = _str(data, "province", problems, base, required=True)
    district = _str(data, "district", problems, base)
    subdistrict = _str(data, "subdistrict", problems, base)
    if province is not None:
        place = _check_place(province, district, subdistrict)
        if isinstance(place, tuple) and len(place) == 2:
            problems.add(base + (place[0],), place[1])
        elif place is not None:
            province, district, subdistrict = place
    return AgencyData(code=code, name_th=name_th, name_en=_str(data, "name_en", problems, base),
                      province=province, district=district, subdistrict=subdistrict)


def _check_place(province: str, district: str | None, subdistrict: str | None) -> Any:
    """Official Thai names (province, district, subdistrict), or (field, message) when a name is unknown."""
    import geothai  # DOPA codes and names of every province, district and subdistrict

    wanted = geothai.normalize(province)
    matches = [p for p in geothai.provinces() if geothai.is_province(p, wanted)]
    if not matches:
        names = [n for p in geothai.provinces() for n in (p.name_th, p.name_en)]
        return ("province", f"{province!r} is not a Thai province{did_you_mean(province, names)}")
    prov = matches[0]
    dist = None
    if district:
        wanted = geothai.normalize(district)
        found = [d for d in geothai.districts(prov.code) if geothai.is_district(d, wanted)]
        if not found:
            names = [n for d in geothai.districts(prov.code) for n in (d.name_th, d.name_en)]
            return ("district", f"{district!r} is not a district of {prov.name_th}{did_you_mean(district, names)}")
        dist = found[0]
    sub_name = None
    if subdistrict:
        if dist is None:
            return ("district", "give the district when a subdistrict is given")
        hits = geothai.match(subdistrict, district=dist.name_th, province=prov.name_th)
        if not hits:
            return ("subdistrict", f"{subdistrict!r} is not a subdistrict of {dist.name_th}, {prov.name_th}")
        sub_name = hits[0].subdistrict.name_th
    return prov.name_th, dist.name_th if dist else None, sub_name


def _validate_sites(data: Any, problems: _Problems, base: tuple[Any, ...]) -> list[SiteData] | None:
    if data is None:
        problems.add(base, "missing: at least one site with its address ranges")
        return None
    if not isinstance(data, list) or not data:
        problems.add(base, "expected a non-empty list of sites")
        return None
    sites: list[SiteData] = []
    codes: set[str] = set()
    ok = True
    for index, item in enumerate(data):
        where = base + (index,)
        if not isinstance(item, Mapping):
            problems.add(where, "expected a mapping")
            ok = False
            continue
        for key in item:
            if key not in {"code", "name_th", "name_en", "address_ranges", "ports", "latitude", "longitude",
                           "credentials", "zone"}:
                problems.add(where + (key,), "unknown field")
        code = _code(item, "code", problems, where)
        if code is not None:
            if code in codes:
                problems.add(where + ("code",), f"site code {code!r} appears twice")
            codes.add(code)
        ranges = _address_ranges(item.get("address_ranges"), problems, where + ("address_ranges",))
        ports = _ports(item.get("ports"), problems, where + ("ports",))
        lat = _float(item.get("latitude"), problems, where + ("latitude",), -90, 90)
        lon = _float(item.get("longitude"), problems, where + ("longitude",), -180, 180)
        creds = _credentials(item.get("credentials"), problems, where + ("credentials",))
        name_th = _str(item, "name_th", problems, where, required=True)
        zone = _zone(item.get("zone"), problems, where + ("zone",))
        sites.append(SiteData(code=code, name_th=name_th, name_en=_str(item, "name_en", problems, where),
                              address_ranges=ranges or [], ports=ports, latitude=lat, longitude=lon,
                              credentials=creds or [], zone=zone))
    return sites if ok else None


def _zone(value: Any, problems: _Problems, where: tuple[Any, ...]) -> str:
    """The site's network zone (default ``central``); a bad name is reported like any other field."""
    from cctv_monitor.zones import CENTRAL, ZoneKeyError, check_zone

    if value is None or value == "":
        return CENTRAL
    try:
        return check_zone(str(value))
    except ZoneKeyError as exc:
        problems.add(where, str(exc))
        return CENTRAL


def _validate_register(data: Any, sites: list[SiteData] | None, problems: _Problems,
                       base: tuple[Any, ...]) -> list[EntryData] | None:
    if data is None:
        return []
    if not isinstance(data, list):
        problems.add(base, "expected a list of register entries")
        return None
    site_codes = [s.code for s in sites or []]
    entries: list[EntryData] = []
    macs: dict[str, int] = {}
    serials: dict[str, int] = {}
    for index, item in enumerate(data):
        where = base + (index,)
        if not isinstance(item, Mapping):
            problems.add(where, "expected a mapping")
            continue
        for key in item:
            if key not in {"mac", "serial", "label", "location", "address", "site", "recorder", "channel"}:
                problems.add(where + (key,), "unknown field")
        mac = None
        if item.get("mac") is not None:
            mac = normalise_mac(str(item["mac"]))
            if mac is None:
                problems.add(where + ("mac",), f"{item['mac']!r} is not a MAC address (e.g. c0:56:e3:00:01:0b)")
            elif mac in macs:
                first = problems.locate(base + (macs[mac], "mac"))[0]
                problems.add(where + ("mac",), f"{mac} is registered twice in this project (first in row {first})"
                             if first is not None else f"{mac} is registered twice in this project "
                             f"(entries {macs[mac] + 1} and {index + 1})")
            else:
                macs[mac] = index
        serial = _str(item, "serial", problems, where)
        if serial is not None:
            if serial in serials:
                first = problems.locate(base + (serials[serial], "serial"))[0]
                problems.add(where + ("serial",), f"serial {serial!r} is registered twice in this project"
                             + (f" (first in row {first})" if first is not None else ""))
            serials[serial] = index
        # A camera behind a recorder may be named by the recorder's host:port and its channel number instead.
        by_channel = _recorder_channel(item, problems, where)
        if mac is None and serial is None and item.get("mac") is None and by_channel is None:
            problems.add(where + ("mac",), "give the MAC address or the serial number of the camera, "
                                           "or its recorder (host:port) and channel")
        site = _str(item, "site", problems, where)
        if site is None and len(site_codes) == 1:
            site = site_codes[0]
        elif site is not None and sites is not None and site not in site_codes:
            problems.add(where + ("site",), f"{site!r} is not a site of this project "
                                            f"({', '.join(site_codes) or 'none'})")
        address = by_channel or _str(item, "address", problems, where)
        if address is not None and _host_port(split_channel(address)[0]) is None:
            problems.add(where + ("address",), f"{address!r} is not host[:port]")
        entries.append(EntryData(mac=mac, serial=serial, label=_str(item, "label", problems, where),
                                 location=_str(item, "location", problems, where), address=address, site=site,
                                 path=where))
    return entries


def _recorder_channel(item: Mapping[str, Any], problems: _Problems, where: tuple[Any, ...]) -> str | None:
    """The channel address ("host:port/ch3") of an entry naming ``recorder`` and ``channel``, else None."""
    if item.get("recorder") is None and item.get("channel") is None:
        return None
    recorder = _str(item, "recorder", problems, where)
    channel = _int(item.get("channel"), problems, where + ("channel",), required=True, minimum=1)
    if recorder is None or _host_port(recorder) is None:
        problems.add(where + ("recorder",), f"{item.get('recorder')!r} is not the recorder's host[:port]")
        return None
    return channel_address(recorder, channel) if channel is not None else None


def normalise_mac(text: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling (colons, dashes, dots, none); None if not a MAC."""
    digits = re.sub(r"[\s:.\-]", "", text.strip().lower())
    if not _MAC_HEX_RE.match(digits):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _host_port(text: str) -> tuple[str, int | None] | None:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        return None
    if not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
        return None
    return host, int(port) if port else None


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [p for p in re.split(r"[\s,;]+", value) if p]
    return [value]


def _address_ranges(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[str] | None:
    if value is None:
        problems.add(where, "missing: the address ranges of the site (e.g. 192.168.1.0/24)")
        return None
    items = split_ranges(value) if isinstance(value, str) else _split_list(value)
    if not items:
        problems.add(where, "missing: the address ranges of the site (e.g. 192.168.1.0/24)")
        return None
    out = []
    for item in items:
        try:
            out.append(parse_range(str(item)).text)
        except RangeError as exc:
            problems.add(where, str(exc))
    return out


def _ports(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[int] | None:
    if value is None:
        return None
    out = []
    for item in _split_list(value):
        port = _int(item, problems, where, minimum=1)
        if port is not None:
            if port > 65535:
                problems.add(where, f"{port} is not a port (1-65535)")
            else:
                out.append(port)
    return out or None


def _credentials(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[Credential] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(where, "expected a list of {username, password or password_env}")
        return None
    out = []
    for index, item in enumerate(value):
        at = where + (index,)
        if not isinstance(item, Mapping):
            problems.add(at, "expected a mapping with username and password or password_env")
            continue
        for key in item:
            if key not in {"username", "password", "password_env"}:
                problems.add(at + (key,), "unknown field (username, password, password_env)")
        username = item.get("username")
        if username is None or not str(username).strip():
            problems.add(at + ("username",), "missing")
            continue
        env = item.get("password_env")
        if env and (problem := password_env_problem(str(env))) is not None:
            problems.add(at + ("password_env",), problem)
            continue
        password = os.environ.get(str(env)) if env else None
        if password is None:
            password = item.get("password")
        if password is None:
            if env:
                problems.add(at + ("password_env",), f"environment variable {env} is not set and no password "
                                                     f"is given")
            else:
                problems.add(at + ("password",), "give password or password_env")
            continue
        out.append(Credential(str(username).strip(), str(password)))
    return out


def _str(data: Mapping[str, Any], key: str, problems: _Problems, base: tuple[Any, ...], *,
         required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.add(base + (key,), "missing")
        return None
    if isinstance(value, (Mapping, list)):
        problems.add(base + (key,), f"expected text, got a {type(value).__name__}")
        return None
    return str(value).strip()


def _code(data: Mapping[str, Any], key: str, problems: _Problems, base: tuple[Any, ...]) -> str | None:
    value = _str(data, key, problems, base, required=True)
    if value is not None and not _CODE_RE.match(value):
        problems.add(base + (key,), f"{value!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return None
    return value


def _int(value: Any, problems: _Problems, where: tuple[Any, ...], *, required: bool = False,
         minimum: int | None = None) -> int | None:
    if value is None or value == "":
        if required:
            problems.add(where, "missing")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).replace(",", "").strip()) if not isinstance(value, float) else int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except ValueError:
        problems.add(where, f"{value!r} is not a whole number")
        return None
    if minimum is not None and number < minimum:
        problems.add(where, f"{number} must be at least {minimum}")
        return None
    return number


def _float(value: Any, problems: _Problems, where: tuple[Any, ...], low: float, high: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.add(where, f"{value!r} is not a number")
        return None
    if not low <= number <= high:
        problems.add(where, f"{number} is outside {low}..{high}")
        return None
    return number


def _decimal(value: Any, problems: _Problems, where: tuple[Any, ...]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        problems.add(where, f"{value!r} is not an amount in baht")
        return None
    if not number.is_finite() or number < 0:
        problems.add(where, f"{value!r} is not an amount in baht")
        return None
    return number.quantize(Decimal("0.01"))


def _date(value: Any, problems: _Problems, where: tuple[Any, ...]) -> date | None:
    """ISO or d/m/y dates; a year above 2400 is a Buddhist-era year (minus 543)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    else:
        text = str(value).strip()
        match = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", text) or None
        try:
            if match:
                year, month, day = (int(g) for g in match.groups())
            else:
                match = re.match(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$", text)
                if not match:
                    raise ValueError
                day, month, year = (int(g) for g in match.groups())
            if year > 2400:
                year -= 543
            parsed = date(year, month, day)
        except ValueError:
            problems.add(where, f"{value!r} is not a date (2025-03-14 or 14/03/2568)")
            return None
    if parsed.year > 2400:
        parsed = parsed.replace(year=parsed.year - 543)
    return parsed
