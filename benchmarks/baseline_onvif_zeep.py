"""Baseline for benchmarks/scan_throughput.py: what a user of the older onvif-zeep 0.2.12 would write.

Runs under the baseline virtual environment (``benchmarks/.venv-baseline``, onvif-zeep 0.2.12 only; it cannot
share a venv with onvif-zeep-async because both install a package named ``onvif``). Reads a JSON list of
cameras (``[{"host", "port", "username", "password"}]``) on stdin and probes them one after the other, one
``ONVIFCamera`` per camera, reading the same fields as our probe: clock, device information, capabilities
(ONVIFCamera's constructor), services, network interfaces, scopes, NTP, hostname, media profiles and the
stream and snapshot URI of every profile. Prints one JSON line with its figures.

This file imports nothing from the project (it runs under another interpreter and library).
"""

import json
import resource
import sys
import time


def probe(camera_cls, cam):
    """Read one camera the way onvif-zeep's README shows; return the number of profiles with a stream URI."""
    c = camera_cls(cam["host"], cam["port"], cam["username"], cam["password"])
    dev = c.devicemgmt
    dev.GetSystemDateAndTime()
    dev.GetDeviceInformation()
    dev.GetServices({"IncludeCapability": False})
    dev.GetNetworkInterfaces()
    dev.GetScopes()
    dev.GetNTP()
    dev.GetHostname()
    media = c.create_media_service()
    uris = 0
    for prof in media.GetProfiles():
        req = media.create_type("GetStreamUri")
        req.ProfileToken = prof.token
        req.StreamSetup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        if media.GetStreamUri(req).Uri:
            uris += 1
        media.GetSnapshotUri({"ProfileToken": prof.token})
    return uris


def main():
    """Probe every camera on stdin sequentially and print the figures as JSON."""
    from onvif import ONVIFCamera

    cameras = json.load(sys.stdin)
    ok = failed = 0
    errors = {}
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    for cam in cameras:
        try:
            if probe(ONVIFCamera, cam) > 0:
                ok += 1
            else:
                failed += 1
                errors["no stream URI"] = errors.get("no stream URI", 0) + 1
        except Exception as exc:  # noqa: BLE001 - counted; the baseline keeps going like our scan does
            failed += 1
            key = "%s: %s" % (type(exc).__name__, str(exc)[:120])
            errors[key] = errors.get(key, 0) + 1
    wall = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(json.dumps({"cameras": len(cameras), "ok": ok, "failed": failed, "wall_s": wall, "cpu_s": cpu,
                      "peak_rss_mb": usage1.ru_maxrss / 1024, "errors": errors}))


if __name__ == "__main__":
    main()
