"""Rule parameters: the validation shapes every rule module shares (numbers, switches, name lists).

A rule class declares ``params = {"min": number(int, minimum=1, required=True), ...}``; the spec loader
calls each :class:`Param`'s ``parse(value, where)``, which raises :class:`SpecError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cctv_monitor.compliance.requirement import SpecError

__all__ = ["Param", "number", "switch", "codes"]


@dataclass(frozen=True)
class Param:
    """One parameter of a rule: its parser, whether required, its default."""

    parse: Callable[[Any, str], Any]
    required: bool = False
    default: Any = None
    help: str = ""


def _number(kind: type, *, minimum: float | None = None) -> Callable[[Any, str], Any]:
    def parse(value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SpecError(where, f"expected a number, got {value!r}")
        try:
            number = kind(value)
            if kind is int and float(value) != number:
                raise ValueError
        except (TypeError, ValueError):
            word = "whole number" if kind is int else "number"
            raise SpecError(where, f"expected a {word}, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise SpecError(where, f"must be at least {minimum:g}, got {number!r}")
        return number
    return parse


def number(kind: type = float, *, minimum: float | None = None, required: bool = False, default: Any = None,
           help: str = "") -> Param:
    """A numeric parameter (``int`` or ``float``, at least ``minimum``): the one shape every rule module uses."""
    return Param(_number(kind, minimum=minimum), required=required, default=default, help=help)


def switch(*, default: bool = True) -> Param:
    """An on/off parameter (YAML true or false)."""
    return Param(_bool_param, default=default)


def codes(value: Any, where: str) -> tuple[str, ...]:
    """A non-empty list of names (a single name allowed), upper-cased."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(where, f"expected a non-empty list, got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise SpecError(where, f"expected names, got {item!r}")
        out.append(item.strip().upper())
    return tuple(out)


def _bool_param(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise SpecError(where, f"expected true or false, got {value!r}")
