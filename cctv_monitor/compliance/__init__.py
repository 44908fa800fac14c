"""Compliance engine: spec profiles as data, small rule classes, findings, device status.

Pure functions (no database, no Flask)::

    spec = Spec.from_mapping(yaml_body, code="fixed_outdoor")      # SpecError names a bad field
    findings = evaluate_device(observation, spec, registered=True)  # list[FindingResult]
    status = derive_status(observation, findings, registered=True, seen_before=False)
    project_findings = evaluate_project(spec, approved_count=8, found_count=7, missing_register=["..."])

Rule ids, requirement keys and severities: :func:`rule_catalogue` and the README table.
"""

from __future__ import annotations

from cctv_monitor.compliance.engine import PROJECT_SOURCE, derive_status, evaluate_device, evaluate_project
from cctv_monitor.compliance.findings import FindingResult
from cctv_monitor.compliance.rules import RULES, Rule, main_profile, normalise_codec, rule_catalogue, version_key
from cctv_monitor.compliance import stream_rules  # noqa: F401,E402 - registers the stream and image rules
from cctv_monitor.compliance.spec import DEVICE_CLASSES, Requirement, Spec, SpecError
from cctv_monitor.statuses import DeviceStatus, Severity

__all__ = [
    "Spec",
    "SpecError",
    "Requirement",
    "FindingResult",
    "Severity",
    "DeviceStatus",
    "evaluate_device",
    "evaluate_project",
    "derive_status",
    "RULES",
    "Rule",
    "rule_catalogue",
    "main_profile",
    "normalise_codec",
    "version_key",
    "DEVICE_CLASSES",
    "PROJECT_SOURCE",
]
