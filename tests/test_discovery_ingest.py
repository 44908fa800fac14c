"""Discovery results as devices: ``discover --save`` files ingested (SQLite and PostgreSQL), one observation
per host merged from WS-Discovery, SADP and Dahua, and a never-activated Hikvision device as a stored finding.

The end-to-end run in namespaces (``discover --save`` then ``ingest``, and ``scan --interface``) is in
tests/test_vendor_discovery_netns.py.
"""

from __future__ import annotations

from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.compliance import evaluate_device
from cctv_monitor.compliance.engine import derive_status
from cctv_monitor.models import Device, DeviceChange, Finding
from probes.discovered import discovered_observations
from probes.discovery import DiscoveredDevice
from probes.fieldfile import read, write
from probes.results import ProbeStatus
from probes.targets import Target
from probes.vendor_discovery import VendorDiscovered
from scan_helpers import add_project, make_obs, mac_of

HIK_OFF = VendorDiscovered(method="sadp", address="127.0.1.21", manufacturer="Hikvision", model="DS-2CD2143G2-I",
                           serial="SN-hik-off", firmware="V5.7.3 build 220112", mac="c0:56:e3:00:01:15",
                           http_port=80, activated=False)
HIK_BOTH = VendorDiscovered(method="sadp", address="127.0.1.22", manufacturer="Hikvision", model="DS-2CD2T47G2-L",
                            serial="SN-hik-both", firmware="V5.7.11", mac="c0:56:e3:00:01:16", http_port=80,
                            activated=True)
DAHUA = VendorDiscovered(method="dahua", address="10.99.0.4", manufacturer="Dahua", model="IPC-HFW2431S",
                         serial="SN-dahua", firmware="2.800", mac="3c:ef:8c:00:08:04", http_port=80)
WSD = DiscoveredDevice(address="127.0.1.22", xaddrs=("http://127.0.1.22:8000/onvif/device_service",),
                       preferred_xaddr="http://127.0.1.22:8000/onvif/device_service",
                       scopes=("onvif://www.onvif.org/name/Gate%20North", "onvif://www.onvif.org/Profile/T"))


def test_one_observation_per_host_merged_from_every_protocol():
    """WS-Discovery and SADP of one host merge (ONVIF port, vendor identity); SADP's 'never activated' is the
    status; a swept address with nothing else is present without identity."""
    got = {o.host: o for o in discovered_observations(wsd=[WSD], vendor=[HIK_OFF, HIK_BOTH, DAHUA],
                                                      swept=[Target("127.0.1.30", 8080)])}
    assert list(got) == ["10.99.0.4", "127.0.1.21", "127.0.1.22", "127.0.1.30"]
    both = got["127.0.1.22"]
    assert both.address == "127.0.1.22:8000" and both.status is ProbeStatus.DISCOVERED
    assert both.protocols == ("ws-discovery", "sadp") and both.field_sources == {"identity": "sadp"}
    assert (both.device.serial, both.device.macs, both.device.name, both.device.onvif_profiles) == (
        "SN-hik-both", ("c0:56:e3:00:01:16",), "Gate North", ("T",))
    off = got["127.0.1.21"]
    assert off.status is ProbeStatus.NOT_ACTIVATED and off.address == "127.0.1.21:80" and "SADP" in off.error
    assert got["10.99.0.4"].protocols == ("dhdiscover",) and got["10.99.0.4"].device.manufacturer == "Dahua"
    swept = got["127.0.1.30"]
    assert swept.address == "127.0.1.30:8080" and swept.device is None and swept.protocols == ("sweep",)


def test_never_activated_is_a_critical_finding_with_the_fix_and_discovered_has_no_verdict():
    """Thai and English fix (activate with a strong password via SADP); only discovered: unknown, no finding."""
    off, both = (o for o in discovered_observations(vendor=[HIK_OFF, HIK_BOTH]))
    from cctv_monitor.compliance.spec import Spec

    spec = Spec.from_mapping({"code": "x", "name_th": "x", "device_class": "fixed_outdoor",
                              "requirements": {"clock": {"max_drift_s": 5}}}, code="x")
    [finding] = evaluate_device(off, spec)
    assert finding.rule_id == "not_activated" and finding.severity.value == "critical"
    assert "SADP" in finding.message_en and "strong password" in finding.message_en
    assert "SADP" in finding.message_th and "รหัสผ่าน" in finding.message_th
    assert derive_status(off, [finding], registered=True, seen_before=False).value == "unreachable"
    assert evaluate_device(both, spec) == []
    assert derive_status(both, [], registered=True, seen_before=True).value == "unknown"


def test_saved_discovery_file_ingests_into_devices_once(app, session, runner, tmp_path):
    """`ingest` of a discovery file: new devices (a critical finding for the unactivated one, matched to the
    project by its site range), a known device keeps its probed address, status and findings; twice: 0 new."""
    project = add_project(session, macs=(mac_of("127.0.1.11"),))
    known = make_obs("127.0.1.11", width=1280, height=720)  # non-compliant (resolution), probed at port 8000
    seed = tmp_path / "probe.jsonl"
    write(seed, [known], tool_version="test")
    assert runner.invoke(cli, args=["ingest", str(seed)]).exit_code == 0
    before = session.scalar(select(Device).where(Device.address == "127.0.1.11:8000"))
    before_status, before_rules = before.status, sorted(f.rule_id for f in _active(session, before.id))
    assert before_status == "non_compliant" and "resolution" in before_rules

    seen_again = VendorDiscovered(method="sadp", address="127.0.1.11", manufacturer="Hikvision",
                                  model="DS-2CD2T47G2-L", serial=known.device.serial, firmware="V5.7.12 build 240101",
                                  mac=mac_of("127.0.1.11"), http_port=80, activated=True)
    path = tmp_path / "discovered.jsonl"
    write(path, discovered_observations(vendor=[HIK_OFF, DAHUA, seen_again]), tool_version="test")
    assert {o.status.value for o in read(path)} == {"not_activated", "discovered"}
    first = runner.invoke(cli, args=["ingest", str(path)])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("3 new, 0 already stored")
    again = runner.invoke(cli, args=["ingest", str(path)])
    assert again.output.startswith("0 new, 3 already stored"), again.output

    session.expire_all()
    devices = {d.address: d for d in session.scalars(select(Device))}
    assert set(devices) == {"127.0.1.11:8000", "127.0.1.21:80", "10.99.0.4:80"}
    off = devices["127.0.1.21:80"]
    assert (off.serial, off.mac, off.model, off.status, off.project_id) == (
        "SN-hik-off", "c0:56:e3:00:01:15", "DS-2CD2143G2-I", "unreachable", project.id)
    [finding] = _active(session, off.id)
    assert finding.rule_id == "not_activated" and finding.severity == "critical" and finding.message_th
    dahua = devices["10.99.0.4:80"]
    assert (dahua.status, dahua.project_id, dahua.manufacturer) == ("unknown", None, "Dahua")
    assert _active(session, dahua.id) == []
    kept = devices["127.0.1.11:8000"]
    assert kept.id == before.id and kept.status == before_status
    assert sorted(f.rule_id for f in _active(session, kept.id)) == before_rules
    assert kept.firmware == "V5.7.12 build 240101"  # a newer firmware SADP reported is tracked as a change
    assert session.scalar(select(DeviceChange.new_value).where(DeviceChange.device_id == kept.id,
                                                               DeviceChange.attribute == "firmware"))
    listed = runner.invoke(cli, args=["devices", "--json"])
    assert "not activated (no password)" in listed.output


def _active(session, device_id: int) -> list[Finding]:
    return list(session.scalars(select(Finding).where(Finding.device_id == device_id, Finding.active.is_(True))))


def test_a_device_known_by_address_alone_is_adopted_when_a_probe_says_who_it_is(app, session, runner, tmp_path):
    """WS-Discovery gave an address only; the probe at that address (with MAC and serial) is the same device."""
    add_project(session)
    wsd_only = DiscoveredDevice(address="127.0.1.31", xaddrs=("http://127.0.1.31:8000/onvif/device_service",),
                                preferred_xaddr="http://127.0.1.31:8000/onvif/device_service")
    path = tmp_path / "found.jsonl"
    write(path, discovered_observations(wsd=[wsd_only]), tool_version="test")
    write(path, [make_obs("127.0.1.31")], tool_version="test")
    assert runner.invoke(cli, args=["ingest", str(path)]).output.startswith("2 new")
    session.expire_all()
    [device] = session.scalars(select(Device))
    assert (device.address, device.mac, device.status) == ("127.0.1.31:8000", mac_of("127.0.1.31"), "unregistered")
