"""Credential order and lock-out safety (issue "Trust", item 2).

Pure: :class:`cctv_monitor.credentials.CredentialPlan` orders and filters credentials per device.
Real: simulated cameras over SOAP count the credentials they were tried with; a camera with the
``lockout`` quirk answers like Hikvision's "Illegal Login Lock".
"""

from __future__ import annotations

import ipaddress

from cctv_monitor.credentials import CredentialPlan, DeviceMemory, SiteCredentials, fingerprint, remember
from probes.results import ProbeStatus
from probes.scan import Credential, Target, probe_many_sync

KEY = b"k" * 32
A_OWN = Credential("admin", "A-site#1")
A_OTHER_SITE = Credential("admin", "A-other#2")
B_OWN = Credential("admin", "B-site#3")
TYPED = Credential("installer", "typed#4")


def site(cidr: str, creds, agency: int) -> SiteCredentials:
    net = ipaddress.ip_network(cidr)
    return SiteCredentials((net,), tuple(creds), agency, net.prefixlen)


def target(host: str, port: int = 80) -> Target:
    return Target(host, port)


SITES = [site("10.1.0.0/24", [A_OWN], 1), site("10.1.1.0/24", [A_OTHER_SITE], 1), site("10.2.0.0/24", [B_OWN], 2)]


def test_only_the_site_holding_the_address_then_typed():
    plan = CredentialPlan(key=KEY, sites=SITES, typed=[TYPED])
    assert plan(target("10.1.0.5")) == [A_OWN, TYPED]  # not A's other site, never agency B's
    assert plan(target("10.2.0.5")) == [B_OWN, TYPED]
    assert plan(target("10.9.0.5")) == [TYPED]  # in no site: only what the operator typed


def test_scan_of_one_agency_never_uses_another_agencys_credentials():
    # B's range nested inside A's: in a scan of agency A, B's credentials are not A's to use.
    sites = [site("10.1.0.0/16", [A_OWN], 1), site("10.1.7.0/24", [B_OWN], 2)]
    assert CredentialPlan(key=KEY, sites=sites, agencies=frozenset({1}))(target("10.1.7.9")) == [A_OWN]
    # A range scan: the most specific range says whose camera it is.
    assert CredentialPlan(key=KEY, sites=sites)(target("10.1.7.9")) == [B_OWN]


def test_check_of_a_range_keeps_the_projects_credentials_inside_the_range():
    project_sites = [site("10.1.0.0/24", [A_OWN], 1)]
    plan = CredentialPlan(key=KEY, sites=SITES, agencies=frozenset({1}), scope_default=project_sites,
                          scope_networks=[ipaddress.ip_network("10.50.0.0/24")], typed=[TYPED])
    assert plan(target("10.50.0.7")) == [A_OWN, TYPED]  # new installation outside every site range
    assert plan(target("10.2.0.5")) == [TYPED]  # agency B's site: none of its credentials


def test_last_good_first_rejected_skipped_until_changed_and_capped():
    many = [Credential("admin", f"pw{i}") for i in range(6)]
    sites = [site("10.1.0.0/24", many, 1)]
    worked = fingerprint(KEY, many[4])
    rejected = frozenset({fingerprint(KEY, many[0]), fingerprint(KEY, many[1])})
    plan = CredentialPlan(key=KEY, sites=sites, max_attempts=3,
                          memory={"10.1.0.5:80": DeviceMemory(worked=worked, rejected=rejected)})
    got = plan(target("10.1.0.5"))
    assert [c.password for c in got] == ["pw4", "pw2", "pw3"]
    assert all(c.ref == fingerprint(KEY, c) for c in got)
    # The site's password for that user changes: the new credential is tried again.
    changed = Credential("admin", "pw0-new")
    plan.sites = [site("10.1.0.0/24", [changed, *many[1:]], 1)]
    assert plan(target("10.1.0.5"))[:2] == [many[4], changed]
    # Fingerprints are keyed and never the password.
    assert "pw4" not in worked and fingerprint(b"other-key", many[4]) != worked


def test_remember_keeps_the_accepted_and_adds_the_rejected():
    memory = remember(DeviceMemory(), "good", ["bad1"])
    assert memory.worked == "good" and memory.rejected == {"bad1"}
    memory = remember(memory, None, ["bad2"])  # e.g. a lock or a timeout: what worked stays first
    assert memory.worked == "good" and memory.rejected == {"bad1", "bad2"}
    memory = remember(memory, None, ["good"])  # the camera's password was changed
    assert memory.worked is None and memory.rejected == {"bad1", "bad2", "good"}
    assert remember(memory, "good", []).rejected == {"bad1", "bad2"}  # accepted again: no longer rejected


# -- real cameras --------------------------------------------------------------------------------------------

def _fleet(**quirk):
    cam = {"name": "lockout-cam", "host": "127.0.7.21", "onvif_port": 18801, "username": "admin",
           "password": "Right#1", "manufacturer": "Hikvision", "macs": ["c0:56:e3:00:07:15"],
           "profiles": [{"token": "Profile_1", "name": "main", "encoding": "H264", "width": 1920, "height": 1080,
                         "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}],
           "quirks": [{"name": "lockout", **quirk}] if quirk else []}
    return {"fleet": "lockout", "cameras": [cam]}


def test_a_lock_is_reported_apart_from_a_wrong_password_and_stops_the_attempts():
    from cctv_monitor.simulator.testing import running_fleet

    wrong = [Credential("admin", f"Wrong#{i}", ref=f"r{i}") for i in range(3)]
    with running_fleet(_fleet(attempts=1), port_fallback=False) as fleet:
        first = probe_many_sync([target("127.0.7.21", 18801)], wrong, timeout_s=3.0)[0]
        second = probe_many_sync([target("127.0.7.21", 18801)], [Credential("admin", "Right#1")], timeout_s=3.0)[0]
        binding_failures = _binding(fleet).auth_failures
    assert first.status is ProbeStatus.AUTH_FAILED
    assert first.auth_locked and first.error.startswith("locked:"), first.error
    assert first.rejected_refs == ("r0",)  # the first was wrong; after the lock nothing more was tried
    assert binding_failures == 1
    assert second.auth_locked and second.rejected_refs == ()  # even the right one: locked, not "wrong"
    from cctv_monitor.compliance.engine import evaluate_device
    from cctv_monitor.compliance.spec import Spec

    [finding] = evaluate_device(second, Spec(code="none", name_th="none", device_class="any", requirements={}))
    assert "locked" in finding.message_en and "not a wrong password" in finding.message_en


def test_wrong_password_is_reported_as_such():
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(_fleet(), port_fallback=False):
        obs = probe_many_sync([target("127.0.7.21", 18801)], [Credential("admin", "Wrong#1", ref="w")],
                              timeout_s=3.0)[0]
    assert obs.status is ProbeStatus.AUTH_FAILED and not obs.auth_locked
    assert obs.error.startswith("wrong password:") and obs.rejected_refs == ("w",)



def _binding(fleet):
    """The simulator's binding of the single camera (its failure counter is what a lock-out counts)."""
    return fleet.runtime.bindings[0]
