"""Benchmark: import a province-sized register (CSV) into a fresh SQLite database, import it again
(idempotent, nothing changes), and evaluate the compliance rules on many observations; print the figures.

    .venv/bin/python benchmarks/registry_import.py [PROJECTS=100] [CAMERAS_PER_PROJECT=50] [OBSERVATIONS=20000]
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

from cctv_monitor import create_app
from cctv_monitor.compliance import derive_status, evaluate_device
from cctv_monitor.db import get_db
from cctv_monitor.registry import CSV_COLUMNS, import_path, load_spec
from probes.results import DeviceIdentity, MediaProfile, Observation, ProbeStatus, StreamCheck

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, projects: int, cameras: int) -> int:
    """A register CSV: ``projects`` projects of ``cameras`` cameras each; returns the row count."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for p in range(projects):
            for c in range(cameras):
                n = p * cameras + c
                writer.writerow({
                    "project_code": f"CR-B-2568-{p:04d}", "project_title_th": f"โครงการกล้อง {p}",
                    "agency_code": f"agency-{p % 40}", "agency_name_th": f"หน่วยงาน {p % 40}",
                    "province": "เชียงราย", "district": "แม่สาย", "spec_profile": "fixed_outdoor",
                    "approved_count": cameras, "site_code": f"s{c % 4}", "site_name_th": f"จุด {c % 4}",
                    "site_address_ranges": f"10.{p // 250}.{p % 250}.0/24", "site_username": "admin",
                    "site_password": "bench", "camera_label": f"cam-{n}",
                    "mac": f"02:00:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}:01",
                })
                rows += 1
    return rows


def observation(i: int) -> Observation:
    """A plausible observation; every fifth one breaks a different rule."""
    width, fps, codec, clock = 1920, 25.0, "H264", 0.0
    kind = i % 5
    if kind == 1:
        width = 1280
    elif kind == 2:
        fps = 10.0
    elif kind == 3:
        codec = "JPEG"
    elif kind == 4:
        clock = 300.0
    main = MediaProfile(token="Profile_1", encoding=codec, width=width, height=1080, fps=fps, bitrate_kbps=4096)
    sub = MediaProfile(token="Profile_2", encoding="H264", width=640, height=360, fps=15, bitrate_kbps=512)
    return Observation(address=f"10.0.0.{i % 250}:80", status=ProbeStatus.OK, clock_offset_s=clock,
                       device=DeviceIdentity(manufacturer="Hikvision", model="DS-2CD2T47G2-L",
                                             firmware="V5.7.11 build 230428", onvif_profiles=("S",)),
                       profiles=(main, sub),
                       stream_checks=(StreamCheck("Profile_1", ok=True, width=width, height=1080, fps=fps,
                                                  codec=codec),))


def main() -> None:
    """Run the benchmark and print its figures."""
    projects = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    cameras = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}",
                          "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "bench"})
        source = tmp_path / "register.csv"
        rows = write_csv(source, projects, cameras)
        with app.app_context(), get_db(app).sessionmaker() as session:
            import_path(session, ROOT / "config" / "profiles")
            for label in ("first import", "re-import"):
                started = time.perf_counter()
                report = import_path(session, source)
                elapsed = time.perf_counter() - started
                assert report.ok, report.errors[:3]
                print(f"{label}: {rows} register rows, {projects} projects in {elapsed:.2f} s "
                      f"({rows / elapsed:.0f} rows/s; created {report.count('created')}, "
                      f"updated {report.count('updated')}, unchanged {report.count('unchanged')})")
            spec = load_spec(session, "fixed_outdoor")
        app.extensions["cctv_db"].dispose()
    observations = [observation(i) for i in range(count)]
    started = time.perf_counter()
    statuses: dict[str, int] = {}
    for obs in observations:
        findings = evaluate_device(obs, spec)
        status = derive_status(obs, findings, registered=True, seen_before=True)
        statuses[status.value] = statuses.get(status.value, 0) + 1
    elapsed = time.perf_counter() - started
    print(f"compliance: {count} observations evaluated in {elapsed:.2f} s ({count / elapsed:.0f}/s); {statuses}")


if __name__ == "__main__":
    main()
