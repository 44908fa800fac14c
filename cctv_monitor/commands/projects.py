"""``import-projects``, ``import-profiles`` and ``projects``: the approved-project registry on the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

#: Exit status when any file had a problem (nothing from that file was imported).
EXIT_BAD_INPUT = 2


def _print_report(report) -> None:
    """One line per file; problems on stderr, each naming file, row and field."""
    for result in report.files:
        if result.ok:
            click.echo(f"OK    {result.path}: {result.summary()}")
        else:
            click.echo(f"ERROR {result.path}: {len(result.errors)} problem(s), nothing imported from this file",
                       err=True)
            for problem in result.errors:
                click.echo(f"  {problem}", err=True)
        for note in result.notes:
            click.echo(f"  note: {note}")
    click.echo(f"{len(report.files)} file(s): {report.count('created')} created, {report.count('updated')} "
               f"updated, {report.count('unchanged')} unchanged, "
               f"{sum(1 for f in report.files if not f.ok)} file(s) rejected")


def _run_import(path: Path, profiles_dir: Path | None) -> None:
    from cctv_monitor import audit
    from cctv_monitor.db import get_db
    from cctv_monitor.registry import import_path

    app = current_app._get_current_object()
    with get_db().sessionmaker() as session:
        report = import_path(session, path, app=app, profiles_dir=profiles_dir)
    for result in report.files:
        if result.kind != "skipped":
            audit.record_now(app, "register_imported", actor=audit.cli_actor(), object_type="file",
                             object_repr=str(result.path)[-255:],
                             detail={"kind": result.kind, "ok": result.ok, "created": result.created[:100],
                                     "updated": result.updated[:100], "problems": len(result.errors)})
    _print_report(report)
    if not report.ok:
        raise SystemExit(EXIT_BAD_INPUT)


def register(group: AppGroup) -> None:
    """Add ``import-projects``, ``import-profiles`` and ``projects`` to ``group``."""

    @group.command("import-projects")
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.option("--profiles/--no-profiles", "with_profiles", default=True, show_default=True,
                  help="First import the spec profiles of CONFIG_DIR/profiles (config/profiles).")
    def import_projects(path: Path, with_profiles: bool) -> None:
        """Import approved projects from PATH: a YAML, CSV or XLSX file, or a folder of them.

        Each file is all-or-nothing: a file with any problem imports nothing and every problem is printed
        with its file, row and field; the command then exits with status 2. Re-importing updates in place.
        """
        profiles_dir = Path(current_app.config["CONFIG_DIR"]) / "profiles" if with_profiles else None
        _run_import(path, profiles_dir)

    @group.command("import-profiles")
    @click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
    def import_profiles(path: Path | None) -> None:
        """Import spec profiles (YAML) from PATH (default: CONFIG_DIR/profiles)."""
        _run_import(path or Path(current_app.config["CONFIG_DIR"]) / "profiles", None)

    @group.command("projects")
    def projects() -> None:
        """List the imported projects: code, agency, profile, approved count, sites, register size."""
        from cctv_monitor.db import get_db
        from cctv_monitor.registry import iter_projects

        with get_db().sessionmaker() as session:
            rows = [(p.code, p.agency.code, p.spec_profile.code, str(p.approved_count),
                     ", ".join(s.code for s in p.sites) or "-", str(len(p.register)), p.agency.name_th)
                    for p in iter_projects(session)]
        if not rows:
            click.echo("No projects imported yet (cctv-monitor import-projects config/projects).")
            return
        header = ("code", "agency", "profile", "approved", "sites", "register", "agency name")
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header) - 1)]
        for row in [header] + rows:
            click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1])

    @group.command("template")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True, help="Overwrite PATH when it exists.")
    def template(path: Path, force: bool) -> None:
        """Write a blank project spreadsheet (XLSX): Thai column headings, one example row, a sheet explaining
        each column and the valid spec profile codes. Fill it in and import it with import-projects."""
        import yaml

        from cctv_monitor.template import write_template

        if path.suffix.lower() != ".xlsx":
            raise click.BadParameter(f"{path}: the template is an Excel workbook; name it .xlsx", param_hint="PATH")
        if path.exists() and not force:
            raise click.BadParameter(f"{path} exists; choose another name or add --force", param_hint="PATH")
        if not path.resolve().parent.is_dir():
            raise click.BadParameter(f"folder {path.resolve().parent} does not exist", param_hint="PATH")
        profiles = []
        for file in sorted((Path(current_app.config["CONFIG_DIR"]) / "profiles").glob("*.yaml")):
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue  # a broken profile file is import-profiles' business, not the template's
            if isinstance(data, dict):
                profiles.append((str(data.get("code") or file.stem), str(data.get("name_th") or "")))
        write_template(path, profiles)
        click.echo(f"Template written to {path}: fill in the sheet 'projects' (one row per camera; the sheet "
                   f"'คำอธิบาย' explains each column), then: cctv-monitor import-projects {path}")
