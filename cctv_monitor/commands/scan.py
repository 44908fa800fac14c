"""``scan``, ``devices`` and ``check``: run the pipeline, list the inventory, accept an installation."""

from __future__ import annotations

import getpass
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cctv_monitor.statuses import DeviceStatus

#: Exit code of usage and configuration errors (click's own usage errors use 2 as well).
EXIT_USAGE = 2


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a scan like Ctrl-C does, so its run is marked interrupted (SIGKILL: next start does)."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests calling commands from threads)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _label(status: str) -> str:
    try:
        s = DeviceStatus(status)
    except ValueError:
        return status
    return f"{s.label_th} / {s.label_en}"


class _Progress:
    """A click progress bar on a terminal; silent otherwise (logs and pipes stay clean)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int, address: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Scanning", show_pos=True, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1, current_item=address)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _follow(app: Any, run_id: int, show: bool, poll_s: float = 1.0) -> None:
    """Wait until a distributed run closes; with ``show``, a line on stderr whenever its units move."""
    import time

    from cctv_monitor.db import get_db
    from cctv_monitor.models import ScanRun
    from cctv_monitor.zone_status import unit_counts

    last = None
    while True:
        with get_db(app).session_scope() as session:
            run = session.get(ScanRun, run_id)
            state, done = run.state, run.done or 0
            counts = unit_counts(session, [run_id]).get(run_id, {})
        if show:
            finished = sum(counts.get(s, 0) for s in ("done", "failed", "expired"))
            detail = ", ".join(f"{s} {n}" for s, n in counts.items() if n)
            line = f"run #{run_id}: {finished} of {sum(counts.values())} units finished ({detail}); {done} recorded"
            if line != last:
                click.echo(line, err=True)
                last = line
        if state not in ("running", "pending"):
            return
        time.sleep(poll_s)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def register(group: AppGroup) -> None:
    """Add ``scan``, ``devices`` and ``check`` to ``group``."""

    @group.command("scan")
    @click.option("--site", help="Site code (or PROJECT/SITE when several projects use the code).")
    @click.option("--project", help="Project code, e.g. CR-MS-2568-001.")
    @click.option("--agency", help="Agency code, e.g. maesai-mun.")
    @click.option("--range", "cidr", help="Address range(s), comma-separated: a CIDR 10.20.1.0/24, a range 10.20.1.11-10.20.1.18 "
                  "(or 10.20.1.11-18), an address, or host:port.")
    @click.option("--streams", is_flag=True, help="Also open each main RTSP stream and measure it (slower).")
    @click.option("--interface", "-i", "interface",
                  help="Also run WS-Discovery, Hikvision SADP and Dahua discovery on this network interface: "
                       "devices inside the target's ranges are probed, the others (and never-activated "
                       "Hikvision devices) are recorded from what they said, without any credential.")
    @click.option("--progress/--no-progress", default=None,
                  help="Progress bar, or with a broker a line per change of the units (default: on a terminal).")
    @click.option("--wait/--no-wait", default=True, show_default=True,
                  help="With a broker (CCTV_BROKER_URL): wait until the zone workers' run closes (at the latest "
                       "at its deadline), or return once its units are sent. Without a broker the scan always "
                       "runs here to the end.")
    def scan(site: str | None, project: str | None, agency: str | None, cidr: str | None, streams: bool,
             interface: str | None, progress: bool | None, wait: bool) -> None:
        """Scan a site, project, agency or address range and record what answers.

        With a broker the scan goes to the zone workers as work units; by default this waits for the run
        to close and prints its summary (Ctrl-C stops waiting; the run goes on). A scan with --interface
        runs here even with a broker (the interface is on this machine).
        """
        from cctv_monitor.scanning import ScanAlreadyRunning, ScanError, ScanTargetError, run_scan
        from cctv_monitor.db import get_db
        from cctv_monitor.models import ScanRun

        chosen = [(k, v) for k, v in (("site", site), ("project", project), ("agency", agency), ("range", cidr))
                  if v]
        if len(chosen) != 1:
            _fail("give exactly one of --site, --project, --agency, --range")
        kind, value = chosen[0]
        bar = _Progress(sys.stderr.isatty() if progress is None else progress)
        app = current_app._get_current_object()
        try:
            with _sigterm_as_interrupt():
                run_id = run_scan(app, kind, value, with_streams=streams, progress=bar, started_by=_who(),
                                  interface=interface)
        except ScanTargetError as exc:
            _fail(str(exc))
        except ScanAlreadyRunning as exc:
            _fail(str(exc), 1)
        except KeyboardInterrupt:
            bar.close()
            click.echo("Scan interrupted; what was read is kept and the run is marked interrupted.", err=True)
            raise SystemExit(130)
        except ScanError as exc:
            _fail(str(exc), 1)
        finally:
            bar.close()
        with get_db(app).session_scope() as session:
            distributed = bool(session.get(ScanRun, run_id).distributed)
        if distributed and not wait:
            click.echo(f"Scan run #{run_id} of {kind} {value} sent to the zone workers; it closes when the last "
                       "unit is counted or at its deadline (see the scans page, or `cctv-monitor scan` without "
                       "--no-wait)")
            return
        if distributed:
            try:
                _follow(app, run_id, sys.stderr.isatty() if progress is None else progress)
            except KeyboardInterrupt:
                click.echo(f"Stopped waiting; scan run #{run_id} goes on in the zones (see the scans page).", err=True)
                raise SystemExit(130)
        with get_db(app).session_scope() as session:
            run = session.get(ScanRun, run_id)
            counts = run.counts or {}
            click.echo(f"Scan run #{run.id} of {kind} {value}: {run.state}; {run.total} addresses probed, "
                       f"{run.done} observations recorded")
            width = max([len(_label(s)) for s in counts] + [20])
            click.echo(f"{'status'.ljust(width)}  count")
            for status, count in counts.items():
                click.echo(f"{_label(status).ljust(width)}  {count}")
            click.echo(f"{'total'.ljust(width)}  {sum(counts.values())}")
            if run.error:
                click.echo(f"Note: {run.error}")
            _print_unread(session, run.id)

    @group.command("devices")
    @click.option("--status", type=click.Choice([s.value for s in DeviceStatus]), help="Only this status.")
    @click.option("--agency", help="Only devices of this agency (code).")
    @click.option("--project", help="Only devices of this project (code), e.g. CR-MS-2568-001.")
    @click.option("--site", help="Only devices of this site (code, or PROJECT/SITE when several projects use it).")
    @click.option("--json", "as_json", is_flag=True, help="A JSON list of objects instead of a table.")
    def devices(status: str | None, agency: str | None, project: str | None, site: str | None,
                as_json: bool) -> None:
        """List the inventory: identity, address, project, status, why it is unreachable, current findings."""
        from cctv_monitor.compliance.engine import unreachable_reason
        from cctv_monitor.db import get_db
        from cctv_monitor.lookup import LookupError_, find_agency, find_project, find_site
        from cctv_monitor.models import Device, Finding

        with get_db().session_scope() as session:
            query = select(Device).options(selectinload(Device.project), selectinload(Device.agency),
                                           selectinload(Device.site), selectinload(Device.recorder)).order_by(Device.id)
            if status:
                query = query.where(Device.status == status)
            try:
                if agency:
                    query = query.where(Device.agency_id == find_agency(session, agency).id)
                if project:
                    query = query.where(Device.project_id == find_project(session, project).id)
                if site:
                    query = query.where(Device.site_id == find_site(session, site).id)
            except LookupError_ as exc:
                _fail(str(exc))
            rows = list(session.scalars(query))
            findings: dict[int, list[Finding]] = {}
            ids = [d.id for d in rows]
            for start in range(0, len(ids), 1000):  # IN lists stay small on every database
                for f in session.scalars(select(Finding).where(Finding.active.is_(True),
                                                               Finding.device_id.in_(ids[start:start + 1000]))
                                         .order_by(Finding.id)):
                    findings.setdefault(f.device_id, []).append(f)

            def reason(device_id: int) -> str | None:
                hit = next((f for f in findings.get(device_id, [])
                            if f.rule_id in ("onvif_unreachable", "not_activated")), None)
                if hit is not None and hit.rule_id == "not_activated":
                    return unreachable_reason("not_activated")[1]
                return unreachable_reason(hit.observed or "error")[1] if hit else None

            items = [{
                "id": d.id, "address": d.address, "mac": d.mac, "serial": d.serial, "manufacturer": d.manufacturer,
                "model": d.model, "firmware": d.firmware, "name": d.name, "status": d.status,
                "reason": reason(d.id),
                "registered": d.registered, "project": d.project.code if d.project else None,
                "agency": d.agency.code if d.agency else None, "site": d.site.code if d.site else None,
                "last_seen": d.last_seen.isoformat() if d.last_seen else None,
                "identity_conflict": d.identity_conflict,
                # A camera seen only through a recorder: the recorder's address and the channel it occupies.
                "recorder": d.recorder.address if d.recorder else None, "channel": d.channel,
                "findings": [{"rule_id": f.rule_id, "severity": f.severity, "expected": f.expected,
                              "observed": f.observed, "message_th": f.message_th, "message_en": f.message_en,
                              "subject": f.subject} for f in findings.get(d.id, [])],
            } for d in rows]
        if as_json:
            click.echo(json.dumps(items, ensure_ascii=False, indent=1))
            return
        if not items:
            click.echo("No devices.")
            return
        header = ("id", "address", "manufacturer / model", "serial / MAC", "project", "status", "reason", "findings")
        _table([header] + [(str(i["id"]), i["address"] or "-",
                            _short(f"{i['manufacturer'] or '-'} {i['model'] or ''}", 32),
                            _short(i["serial"] or i["mac"] or "-", 36), i["project"] or "-", i["status"],
                            i["reason"] or "-",
                            ", ".join(f["rule_id"] for f in i["findings"]) or "-") for i in items])

    @group.command("check")
    @click.option("--project", "code", required=True, help="Code of the approved project to check against.")
    @click.option("--range", "cidr", help="Scan this range instead of the project's sites (same forms as scan --range).")
    @click.option("--user", help="ONVIF user to try after the credential that worked on each device last time and "
                                 "the project's site credentials.")
    @click.option("--password", envvar="CCTV_CHECK_PASSWORD",
                  help="ONVIF password for --user (or set CCTV_CHECK_PASSWORD, which stays out of shell history).")
    @click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True),
                  help="Write the printable acceptance report (HTML, Thai) to this file.")
    @click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON instead of a table.")
    @click.option("--register", "do_register", is_flag=True,
                  help="After a pass, add the devices found to the project's register.")
    @click.option("--streams/--no-streams", default=True, show_default=True,
                  help="Open each main RTSP stream to measure what it really delivers (and take thumbnails).")
    @click.option("--operator", default=None, help="Name of the person running the check (default: login name).")
    @click.option("--detail", is_flag=True, help="Also print every requirement of every camera (expected, observed).")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False, writable=True),
                  help="Also append every observation to this JSON-lines file (for 'cctv-monitor ingest' elsewhere).")
    def check(code: str, cidr: str | None, user: str | None, password: str | None, report_path: str | None,
              as_json: bool, do_register: bool, streams: bool, operator: str | None, detail: bool,
              save_path: str | None) -> None:
        """Acceptance check of an installation: exit 0 when everything passes, 1 when anything fails."""
        from cctv_monitor.acceptance import CheckSetupError, run_check
        from cctv_monitor.report import render_report

        if (user is None) != (password is None):
            _fail("--user and --password go together (the password may come from CCTV_CHECK_PASSWORD)")
        if report_path and not Path(report_path).resolve().parent.is_dir():
            _fail(f"--report {report_path}: folder {Path(report_path).resolve().parent} does not exist")
        if save_path and not Path(save_path).resolve().parent.is_dir():
            _fail(f"--save {save_path}: folder {Path(save_path).resolve().parent} does not exist")
        app = current_app._get_current_object()
        observed: list[Any] = []
        try:
            with _sigterm_as_interrupt():
                result, registered = run_check(app, code, cidr=cidr, user=user, password=password,
                                               with_streams=streams, operator=operator or _who(),
                                               register=do_register, observations_out=observed)
        except CheckSetupError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("Check interrupted.", err=True)
            raise SystemExit(130)
        if report_path:
            Path(report_path).write_text(render_report(result), encoding="utf-8")
        if save_path:
            from cctv_monitor.fieldwork import tool_version
            from probes.fieldfile import write

            write(save_path, observed, tool_version=tool_version())
        if as_json:
            data = result.to_dict()
            data["registered_now"] = registered
            click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            _print_verdict(result, registered, report_path, detail)
        raise SystemExit(0 if result.passed else 1)


#: At most this many unread addresses are listed after a scan (the rest: ``devices --status unreachable``).
_UNREAD_LINES = 20


def _print_unread(session: Any, run_id: int) -> None:
    """The addresses of a run that could not be read (wrong password, ONVIF off, timeout...) with the reason."""
    from cctv_monitor.compliance.engine import unreachable_reason
    from cctv_monitor.models import Observation

    rows = list(session.execute(select(Observation.address, Observation.probe_status, Observation.error)
                                .where(Observation.scan_run_id == run_id, Observation.probe_status != "ok")
                                .order_by(Observation.id).limit(_UNREAD_LINES + 1)))
    if not rows:
        return
    click.echo("")
    click.echo("Not read (known or answering addresses):")
    _table([("address", "reason", "detail")] + [
        (address, unreachable_reason(status)[1], _short(error or "-", 90)) for address, status, error in
        rows[:_UNREAD_LINES]])
    if len(rows) > _UNREAD_LINES:
        click.echo("... and more: cctv-monitor devices --status unreachable (or offline, missing)")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _print_verdict(result: Any, registered: int, report_path: str | None, detail: bool = False) -> None:
    click.echo(f"Acceptance check of {result.project_code} ({result.scope_text_en or result.scope_text}), spec {result.spec_code}")
    table = [("#", "address", "label", "model", "accepted user", "result", "failing")]
    for i, cam in enumerate(result.cameras, 1):
        model = _short(f"{cam.manufacturer or '-'} {cam.model or ''}".strip(), 30)
        if cam.reachable:
            failing = ", ".join(cam.failing) or "-"
        else:
            failing = "ONVIF: " + _short(cam.error or "-", 60)
        table.append((str(i), cam.address, _short(cam.label or "-", 20), model, _short(cam.credential_text, 28),
                      "pass" if cam.passed else "FAIL", failing))
    _table(table)
    if detail:
        click.echo("")
        rows = [("#", "address", "requirement", "expected", "observed", "result")]
        for i, cam in enumerate(result.cameras, 1):
            if not cam.reachable:
                rows.append((str(i), cam.address, "ONVIF", "readable", _short(cam.error or "-", 60), "FAIL"))
            for row in cam.rows:
                rows.append((str(i), cam.address, row.key, _short(row.expected, 48), _short(row.observed, 48),
                             row.result_en))
        _table(rows)
    click.echo("")
    if result.typed_rejected_by:
        cams = result.typed_rejected_by
        read = [c for c in cams if c.reachable]
        click.echo(f"WARNING: the password typed for --user {result.typed_user} was rejected by {len(cams)} "
                   f"camera(s): {', '.join(c.address for c in cams)}"
                   + (f"; {len(read)} of them were read with a stored credential instead (see 'accepted user')"
                      if read else ""))
    click.echo(f"approved {result.approved_count}, found {result.found_count}, passed {result.passed_count}")
    for f in result.project_findings:
        click.echo(f"{'FAIL' if f.blocking else 'note'}: {f.message_en}")
    click.echo(f"VERDICT: {'PASS' if result.passed else 'FAIL'}")
    if not detail and result.cameras:
        click.echo("(each requirement of each camera: --detail)")
    if registered:
        click.echo(f"{registered} device(s) added to the register of {result.project_code}")
    if report_path:
        click.echo(f"Report written to {report_path}")
