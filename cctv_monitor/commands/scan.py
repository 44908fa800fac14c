"""``scan``, ``devices`` and ``check``: run the pipeline, list the inventory, accept an installation."""

from __future__ import annotations

import getpass
import json
import os
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
    @click.option("--range", "cidr", help="Address range(s), comma-separated CIDRs, e.g. 10.20.1.0/24.")
    @click.option("--streams", is_flag=True, help="Also open each main RTSP stream and measure it (slower).")
    @click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
    def scan(site: str | None, project: str | None, agency: str | None, cidr: str | None, streams: bool,
             progress: bool | None) -> None:
        """Scan a site, project, agency or address range and record what answers."""
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
                run_id = run_scan(app, kind, value, with_streams=streams, progress=bar, started_by=_who())
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
            run = session.get(ScanRun, run_id)
            counts = run.counts or {}
            click.echo(f"Scan run #{run.id} of {kind} {value}: {run.state}; {run.total} addresses probed, "
                       f"{run.done} observations recorded")
            width = max([len(_label(s)) for s in counts] + [20])
            click.echo(f"{'status'.ljust(width)}  count")
            for status, count in counts.items():
                click.echo(f"{_label(status).ljust(width)}  {count}")
            click.echo(f"{'total'.ljust(width)}  {sum(counts.values())}")

    @group.command("devices")
    @click.option("--status", type=click.Choice([s.value for s in DeviceStatus]), help="Only this status.")
    @click.option("--agency", help="Only devices of this agency (code).")
    @click.option("--json", "as_json", is_flag=True, help="A JSON list of objects instead of a table.")
    def devices(status: str | None, agency: str | None, as_json: bool) -> None:
        """List the inventory: identity, address, project, status and current findings."""
        from cctv_monitor.db import get_db
        from cctv_monitor.models import Agency, Device, Finding

        with get_db().session_scope() as session:
            query = select(Device).options(selectinload(Device.project), selectinload(Device.agency),
                                           selectinload(Device.site), selectinload(Device.recorder)).order_by(Device.id)
            if status:
                query = query.where(Device.status == status)
            if agency:
                agency_row = session.scalar(select(Agency).where(Agency.code == agency))
                if agency_row is None:
                    _fail(f"no agency with code {agency!r}")
                query = query.where(Device.agency_id == agency_row.id)
            rows = list(session.scalars(query))
            findings: dict[int, list[Finding]] = {}
            ids = [d.id for d in rows]
            for start in range(0, len(ids), 1000):  # IN lists stay small on every database
                for f in session.scalars(select(Finding).where(Finding.active.is_(True),
                                                               Finding.device_id.in_(ids[start:start + 1000]))
                                         .order_by(Finding.id)):
                    findings.setdefault(f.device_id, []).append(f)
            items = [{
                "id": d.id, "address": d.address, "mac": d.mac, "serial": d.serial, "manufacturer": d.manufacturer,
                "model": d.model, "firmware": d.firmware, "name": d.name, "status": d.status,
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
        header = ("id", "address", "manufacturer / model", "serial / MAC", "project", "status", "findings")
        table = [header] + [(str(i["id"]), i["address"] or "-",
                             _short(f"{i['manufacturer'] or '-'} {i['model'] or ''}", 32),
                             _short(i["serial"] or i["mac"] or "-", 36), i["project"] or "-", i["status"],
                             ", ".join(f["rule_id"] for f in i["findings"]) or "-") for i in items]
        widths = [max(len(r[c]) for r in table) for c in range(len(header))]
        for row in table:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())

    @group.command("check")
    @click.option("--project", "code", required=True, help="Code of the approved project to check against.")
    @click.option("--range", "cidr", help="Scan this range instead of the project's sites (CIDRs, comma-separated).")
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
    def check(code: str, cidr: str | None, user: str | None, password: str | None, report_path: str | None,
              as_json: bool, do_register: bool, streams: bool, operator: str | None) -> None:
        """Acceptance check of an installation: exit 0 when everything passes, 1 when anything fails."""
        from cctv_monitor.acceptance import CheckSetupError, run_check
        from cctv_monitor.report import render_report

        if (user is None) != (password is None):
            _fail("--user and --password go together (the password may come from CCTV_CHECK_PASSWORD)")
        if report_path and not Path(report_path).resolve().parent.is_dir():
            _fail(f"--report {report_path}: folder {Path(report_path).resolve().parent} does not exist")
        app = current_app._get_current_object()
        try:
            with _sigterm_as_interrupt():
                result, registered = run_check(app, code, cidr=cidr, user=user, password=password,
                                               with_streams=streams, operator=operator or _who(),
                                               register=do_register)
        except CheckSetupError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("Check interrupted.", err=True)
            raise SystemExit(130)
        if report_path:
            Path(report_path).write_text(render_report(result), encoding="utf-8")
        if as_json:
            data = result.to_dict()
            data["registered_now"] = registered
            click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            _print_verdict(result, registered, report_path)
        raise SystemExit(0 if result.passed else 1)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_verdict(result: Any, registered: int, report_path: str | None) -> None:
    click.echo(f"Acceptance check of {result.project_code} ({result.scope_text}), spec {result.spec_code}")
    table = [("device", "address", "model", "requirement", "expected", "observed", "result")]
    for i, cam in enumerate(result.cameras, 1):
        model = _short(f"{cam.manufacturer or '-'} {cam.model or ''}", 30)
        if not cam.reachable:
            table.append((str(i), cam.address, model, "ONVIF", "readable", _short(cam.error or "-", 40), "FAIL"))
            continue
        for row in cam.rows:
            table.append((str(i), cam.address, model, row.key, _short(row.expected, 30), _short(row.observed, 30),
                          "pass" if row.passed else "FAIL"))
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    click.echo("")
    click.echo(f"approved {result.approved_count}, found {result.found_count}, passed {result.passed_count}")
    for f in result.project_findings:
        click.echo(f"{'FAIL' if f.blocking else 'note'}: {f.message_en}")
    click.echo(f"VERDICT: {'PASS' if result.passed else 'FAIL'}")
    if registered:
        click.echo(f"{registered} device(s) added to the register of {result.project_code}")
    if report_path:
        click.echo(f"Report written to {report_path}")
