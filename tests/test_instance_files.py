"""Instance files: 0700 folder, 0600 secrets and SQLite files written atomically; credential key rotation
in one transaction, checked with a real scan of a simulated camera afterwards."""

from __future__ import annotations

import copy
import os
import stat
import threading
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from cctv_monitor import create_app
from cctv_monitor.cli import cli
from cctv_monitor.crypto import credential_key
from cctv_monitor.db import get_db
from cctv_monitor.instance import write_atomic
from cctv_monitor.models import AuditEntry, Site
from cctv_monitor.registry import site_credentials
from cctv_monitor.scanning import run_scan

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())
CAMERA = dict(copy.deepcopy(DEMO["cameras"][0]), name="rot-1", host="127.79.5.11",
              macs=["c0:56:e3:79:05:0b"], serial="DS-2CD2T47G2-L2024ROT05011")
FLEET = {"fleet": "rotate-test", "defaults": DEMO["defaults"], "cameras": [CAMERA]}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """A permissive umask, so modes come from the code and not from the environment."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_instance_folder_secrets_and_sqlite_files_are_private(tmp_path, loose_umask):
    """A fresh instance: folder 0700; secret key, credential key, database, -wal and -shm 0600."""
    folder = tmp_path / "instance"
    app = create_app({"TESTING": True, "SECRET_KEY": None, "INSTANCE_PATH": str(folder)})
    try:
        credential_key(app)
        with get_db(app).engine.connect() as conn:  # WAL mode: the -wal/-shm files exist while connected
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.commit()
            files = ["secret_key", "credential.key", "cctv_monitor.sqlite3", "cctv_monitor.sqlite3-wal",
                     "cctv_monitor.sqlite3-shm"]
            assert {name: oct(_mode(folder / name)) for name in files} == {name: "0o600" for name in files}
        assert _mode(folder) == 0o700
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert len((folder / "secret_key").read_text().strip()) == 64
    finally:
        get_db(app).dispose()


def test_existing_loose_files_are_tightened(tmp_path, loose_umask):
    """An instance made by an older version (0755 folder, 0644 files) is made private on start."""
    folder = tmp_path / "instance"
    folder.mkdir(mode=0o755)
    (folder / "secret_key").write_text("a" * 64)
    (folder / "cctv_monitor.sqlite3").touch(mode=0o644)
    os.chmod(folder, 0o755)
    os.chmod(folder / "secret_key", 0o644)
    app = create_app({"TESTING": True, "SECRET_KEY": None, "INSTANCE_PATH": str(folder)})
    try:
        assert app.config["SECRET_KEY"] == "a" * 64
        assert _mode(folder) == 0o700 and _mode(folder / "secret_key") == 0o600
        assert _mode(folder / "cctv_monitor.sqlite3") == 0o600
    finally:
        get_db(app).dispose()


def test_key_created_once_when_processes_race(tmp_path, loose_umask):
    """Many threads creating the credential key at once all get the same key (no last-writer-wins)."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    try:
        keys: list[bytes] = []
        threads = [threading.Thread(target=lambda: keys.append(credential_key(app))) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(keys) == 16 and len(set(keys)) == 1
        assert (tmp_path / "instance" / "credential.key").read_bytes().strip() == keys[0]
    finally:
        get_db(app).dispose()


def test_write_atomic_replaces_in_one_step(tmp_path):
    """The target is either the old or the new content; no temporary file is left."""
    target = tmp_path / "key"
    assert write_atomic(target, b"old\n", replace=False)
    assert not write_atomic(target, b"other\n", replace=False)  # kept: someone made it first
    assert write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n" and _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


@pytest.fixture(scope="module")
def fleet():
    """One simulated camera, ONVIF only, whose password is the site credential."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(FLEET) as running:
        yield running


def _import_project(runner, tmp_path, port: int) -> None:
    project = {"code": "TEST-ROT", "title_th": "โครงการทดสอบเปลี่ยนกุญแจ", "agency": {
        "code": "maesai-mun", "name_th": "เทศบาลตำบลแม่สาย", "province": "เชียงราย", "district": "แม่สาย",
        "subdistrict": "แม่สาย"}, "approval_ref": "ชร 0023.3/9998", "approval_date": "2025-02-14",
        "spec_profile": "fixed_outdoor", "approved_count": 1,
        "sites": [{"code": "site", "name_th": "จุดทดสอบ", "address_ranges": ["127.79.5.0/24"], "ports": [port],
                   "credentials": [{"username": "admin", "password": "Demo#2567"}]},
                  {"code": "spare", "name_th": "จุดสำรอง", "address_ranges": ["127.79.6.0/24"], "ports": [port],
                   "credentials": [{"username": "operator", "password": "Spare#2568"}]}]}
    (tmp_path / "rot.yaml").write_text(yaml.safe_dump(project, allow_unicode=True))
    assert runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")]).exit_code == 0
    result = runner.invoke(cli, args=["import-projects", str(tmp_path / "rot.yaml")])
    assert result.exit_code == 0, result.output


def _tokens(app) -> dict[str, str]:
    with get_db(app).session_scope() as session:
        return {s.code: s.credentials_encrypted for s in session.scalars(select(Site))}


def test_rotate_credential_key_then_scan(app, runner, fleet, tmp_path):
    """After rotation every credential decrypts under the new key only, and a scan still logs in."""
    _import_project(runner, tmp_path, fleet.cameras[0].port)
    old_key = credential_key(app)
    before = _tokens(app)
    result = runner.invoke(cli, args=["rotate-credential-key"])
    assert result.exit_code == 0, result.output
    assert "2 site(s)" in result.output
    new_key = (Path(app.instance_path) / "credential.key").read_bytes().strip()
    assert new_key != old_key and credential_key(app) == new_key
    assert _mode(Path(app.instance_path) / "credential.key") == 0o600
    assert not (Path(app.instance_path) / "credential.key.new").exists()
    after = _tokens(app)
    for code, token in after.items():
        assert token != before[code]
        with pytest.raises(InvalidToken):
            Fernet(old_key).decrypt(token.encode())
    with get_db(app).session_scope() as session:
        sites = {s.code: site_credentials(s, app=app) for s in session.scalars(select(Site))}
        assert [(c.username, c.password) for c in sites["spare"]] == [("operator", "Spare#2568")]
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "credential_key_rotated"))
        assert entry.detail == {"sites": 2}
    results: list = []
    run_scan(app, "site", "TEST-ROT/site", results=results, deliver_alerts=False)
    assert [(r.obs.host, r.obs.status.value) for r in results] == [("127.79.5.11", "ok")]


def test_rotation_is_all_or_nothing(app, runner, fleet, tmp_path):
    """One credential that does not decrypt: exit 2 naming the site, nothing re-encrypted, key unchanged."""
    _import_project(runner, tmp_path, fleet.cameras[0].port)
    with get_db(app).session_scope() as session:
        spare = session.scalar(select(Site).where(Site.code == "spare"))
        spare.credentials_encrypted = Fernet(Fernet.generate_key()).encrypt(b"[]").decode()
    key, before = credential_key(app), _tokens(app)
    result = runner.invoke(cli, args=["rotate-credential-key"])
    assert result.exit_code == 2
    assert "(spare) do not decrypt with the current key; nothing was changed" in result.output
    assert _tokens(app) == before and credential_key(app) == key
    assert not (Path(app.instance_path) / "credential.key.new").exists()


def test_rotation_with_the_key_in_the_environment_needs_the_new_key(app, runner, tmp_path, monkeypatch):
    """CCTV_CREDENTIAL_KEY: the new key comes on stdin; without it the command refuses, naming the option."""
    old = Fernet.generate_key()
    app.config["CREDENTIAL_KEY"] = old.decode()
    from cctv_monitor.crypto import encrypt_credentials
    from scan_helpers import add_project

    with get_db(app).session_scope() as session:
        add_project(session, credentials=encrypt_credentials(app, [("admin", "Demo#2567")]))
    refused = runner.invoke(cli, args=["rotate-credential-key"])
    assert refused.exit_code == 2 and "--new-key-stdin" in refused.output
    new = Fernet.generate_key()
    result = runner.invoke(cli, args=["rotate-credential-key", "--new-key-stdin"], input=new.decode() + "\n")
    assert result.exit_code == 0, result.output
    token = next(iter(_tokens(app).values()))
    assert Fernet(new).decrypt(token.encode()) and not (Path(app.instance_path) / "credential.key").exists()
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(token.encode())
