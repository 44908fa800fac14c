"""The layer rules of the code base, read from the source with ``ast`` (one check imports, in a subprocess).

- probes/ is the lowest layer: it never imports the application, the web UI, Flask or the database, so
  zone workers and field laptops can run it alone;
- the simulator shares no code with probes/ (it is the other side of the wire);
- no import cycle between project modules (imports inside functions count too: a late import that
  dodges a cycle is still a cycle);
- dashboards/ never imports probes/ (pages read the inventory; redaction comes through
  :mod:`cctv_monitor.serialize`);
- the scan core (cctv_monitor/scan/) imports no Flask and nothing that does (directly or through the app
  modules), so a zone worker or a field laptop records scans without a web app; importing the scan core
  or the zone worker really loads no Flask (the package root is lazy: checked in a fresh interpreter);
- no module over 600 lines: the modules that still break it are listed by name; the list may only shrink
  (a listed module that now keeps the rule fails the test until it is taken off the list).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("cctv_monitor", "probes", "dashboards")
MAX_LINES = 600

#: Modules still over MAX_LINES (the scan-core issue splits them). Shrink only.
OVERSIZE: set[str] = set()

PROBES_MAY_NOT_IMPORT = ("cctv_monitor", "dashboards", "flask", "flask_login", "flask_wtf", "werkzeug",
                         "sqlalchemy", "alembic", "psycopg")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every project module (migrations aside)."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO)
            if "migrations" in rel.parts:
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module name that ``path`` imports (absolute, resolved), at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one, else a name of pkg
            subs = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(base)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _project_edges(name: str) -> set[str]:
    """The project modules ``name`` imports (a ``from pkg.sub import x`` names pkg.sub, not pkg)."""
    return {dep for dep in GRAPH[name] if dep in MODULES and dep != name}


def test_probes_import_no_application_layer() -> None:
    """probes/ runs alone on zone workers and laptops: no app, no web UI, no Flask, no database."""
    bad = sorted(f"{name} imports {dep}" for name, deps in GRAPH.items() if name.startswith("probes")
                 for dep in deps if dep.split(".")[0] in PROBES_MAY_NOT_IMPORT)
    assert not bad, bad


def test_simulator_shares_no_code_with_probes() -> None:
    """The simulated cameras are written apart from the probes, so a shared bug cannot hide itself."""
    bad = sorted(f"{name} imports {dep}" for name, deps in GRAPH.items()
                 if name.startswith("cctv_monitor.simulator") for dep in deps if dep.split(".")[0] == "probes")
    bad += sorted(f"{name} imports {dep}" for name, deps in GRAPH.items() if name.startswith("probes")
                  for dep in deps if dep.startswith("cctv_monitor.simulator"))
    assert not bad, bad


def test_no_import_cycles() -> None:
    """Imports between project modules run one way (depth-first search for a back edge)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(_project_edges(node)):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
    # A package's __init__ that re-exports its submodules is not a cycle with them.
    real = [c for c in cycles if not (len(c) == 3 and (c[0].startswith(c[1] + ".") or c[1].startswith(c[0] + ".")))]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


def test_module_size() -> None:
    """No module over 600 lines; the listed exceptions may only shrink."""
    sizes = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    over = {rel for rel, n in sizes.items() if n > MAX_LINES}
    assert over <= OVERSIZE, f"new modules over {MAX_LINES} lines: {sorted(over - OVERSIZE)}"
    assert OVERSIZE <= over, f"now within {MAX_LINES} lines, take them off OVERSIZE: {sorted(OVERSIZE - over)}"


def test_dashboards_do_not_reach_into_probes() -> None:
    """The web UI reads the inventory; it never probes (nor imports the probe layer)."""
    bad = sorted(f"{name} imports {dep}" for name, deps in GRAPH.items() if name.startswith("dashboards")
                 for dep in deps if dep.split(".")[0] == "probes")
    assert not bad, bad


#: Application modules that import Flask (or the web UI); the scan core may import none of them.
_WEB_ROOTS = ("flask", "flask_login", "flask_wtf", "werkzeug", "dashboards")


def test_scan_core_needs_no_web_app() -> None:
    """cctv_monitor.scan and every project module it reaches import no Flask (any depth, late imports too)."""
    reached: set[str] = set()
    todo = [n for n in MODULES if n == "cctv_monitor.scan" or n.startswith("cctv_monitor.scan.")]
    assert todo, "the scan core package is missing"
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(dep for dep in _project_edges(name) if dep != "cctv_monitor")
    bad = sorted(f"{name} imports {dep}" for name in reached for dep in GRAPH[name]
                 if dep.split(".")[0] in _WEB_ROOTS)
    assert not bad, bad


def test_scan_core_and_zone_worker_load_no_flask() -> None:
    """Imported for real in a fresh interpreter: the package root must not pull the web app in."""
    code = ("import sys, cctv_monitor.scan, cctv_monitor.scan.ingest, cctv_monitor.zone_worker; "
            "print(sorted(m for m in ('flask', 'werkzeug', 'dashboards') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
