"""Simulated camera fleet: ONVIF devices, RTSP streams and WS-Discovery, driven by a fleet YAML file.

This is the *other side of the wire* from :mod:`probes`: it shares no code with it and writes its
SOAP replies from string templates (never zeep), so the real client libraries are exercised end to end.
See ``config/fleets/FORMAT.md`` for the fleet file format.
"""

from cctv_monitor.simulator.fleet import CameraSpec, Fleet, FleetError, generate_fleet, load_fleet

__all__ = ["CameraSpec", "Fleet", "FleetError", "generate_fleet", "load_fleet"]
