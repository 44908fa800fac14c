"""One vocabulary for probes and app: redaction, control-character stripping, MAC/serial/codec/host normalisers.

Dependency-free (standard library only) so probes, the web app, exports, reports and logs all call the
same functions: a credential redacted here is redacted everywhere, a camera string cleaned here is clean
everywhere.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

__all__ = [
    "REDACTED",
    "redact_uri",
    "redact_text",
    "strip_control",
    "clean_strings",
    "normalise_mac",
    "is_valid_mac",
    "is_placeholder_serial",
    "normalise_encoding",
    "host_of",
    "CHANNEL_MARK",
    "channel_address",
    "split_channel",
    "RedactingFilter",
]

REDACTED = "***"

# Names under which vendors put credentials into URLs (query, path or ;params), case-insensitive:
# ZoneMinder#1346 (Dahua /user=admin_password=x), Foscam loginuse/loginpas, authbasic=base64(user:pass),
# Axis/Amcrest ;user=;pass=, generic token/key forms.
_SECRET_NAMES = ("password", "passwd", "passwort", "pass", "pwd", "psw", "passw", "loginpas", "loginpass",
                 "authbasic", "auth", "token", "access_token", "api_key", "apikey", "key", "secret",
                 "user", "username", "usr", "loginuse", "login", "account")
_SECRET_PARAM = re.compile(
    r"(?i)(^|[?&;/_\s,])(" + "|".join(sorted(map(re.escape, _SECRET_NAMES), key=len, reverse=True)) +
    r")=([^&;/\s#\"'<>]*)")
# scheme://userinfo@host: userinfo runs to the last '@' before the path (passwords may hold '@', '#', '?').
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,15}://)([^/\s\"'<>]*)@")
# C0/C1 controls and DEL, plus the bidi overrides that can disguise text on a page or terminal.
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
         "\u200f"}
_FOLD = {"\t": " ", "\n": " ", "\r": " "}
_CONTROLS = {c: None for c in [*range(0x00, 0x20), *range(0x7f, 0xa0)]} | {ord(c): None for c in _BIDI}
_ONE_LINE = _CONTROLS | {ord(k): v for k, v in _FOLD.items()}
_KEEP_LINES = _CONTROLS | {ord("\r"): " ", ord("\n"): "\n", ord("\t"): "\t"}
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PLACEHOLDER_SERIALS = {"", "0", "none", "null", "n/a", "na", "unknown", "serial", "serialnumber", "default",
                        "123456", "1234567890", "0123456789", "abcdef", "xxxxxx", "to be filled by o.e.m."}
_ENCODINGS = {"HEVC": "H265", "AVC": "H264", "MJPEG": "JPEG", "MJPG": "JPEG"}


def redact_text(text: str) -> str:
    """``text`` with every credential inside a URI (userinfo, password-like parameters) replaced by ``***``."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", text)


def redact_uri(uri: str | None) -> str | None:
    """Remove credentials from a URI (any scheme): userinfo and password-like parameters become ``***``."""
    if not uri:
        return uri
    return redact_text(uri)


def strip_control(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without control characters (C0, DEL, C1, bidi overrides); tabs and line breaks become spaces."""
    if not text or text.isprintable():  # the common case, checked in C
        return text
    return text.translate(_KEEP_LINES if keep_newlines else _ONE_LINE)


def clean_strings(value: Any, *, keep_newlines_in: frozenset[str] = frozenset(), _key: str = "") -> Any:
    """Every string of a JSON-like structure passed through :func:`strip_control` (bytes untouched)."""
    if isinstance(value, str):
        return strip_control(value, keep_newlines=_key in keep_newlines_in)
    if isinstance(value, dict):
        return {k: clean_strings(v, keep_newlines_in=keep_newlines_in, _key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        cleaned = [clean_strings(v, keep_newlines_in=keep_newlines_in, _key=_key) for v in value]
        return type(value)(cleaned) if isinstance(value, tuple) else cleaned
    return value


def normalise_mac(raw: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from any common MAC notation; None when it is not 12 hex digits."""
    digits = "".join(c for c in raw.lower() if c in "0123456789abcdef")
    if len(digits) != 12 or len(raw.strip()) > 17:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def is_valid_mac(mac: str | None) -> bool:
    """True for a unicast MAC we can key a device by (not all-zero, all-ones or multicast)."""
    if not mac or not _MAC_RE.match(mac):
        return False
    if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
        return False
    return not int(mac[:2], 16) & 1  # group bit set: not a NIC address


def is_placeholder_serial(serial: str | None) -> bool:
    """True for serials that identify nothing: empty, well-known fillers, or a prefix plus one repeated digit."""
    if serial is None:
        return True
    return _placeholder(serial) if len(serial) <= 128 else _placeholder.__wrapped__(serial)


@lru_cache(maxsize=65536)
def _placeholder(serial: str) -> bool:
    """:func:`is_placeholder_serial` of a string (asked several times per camera per scan: kept)."""
    text = serial.strip().lower()
    if text in _PLACEHOLDER_SERIALS:
        return True
    body = re.sub(r"^[a-z]+", "", re.sub(r"[^0-9a-z]", "", text))
    return len(body) < 4 or len(set(body)) == 1  # "SZ0000000000", "111111": same digit repeated


def normalise_encoding(value: str | None) -> str | None:
    """Codec name as the project spells it: "H264", "H265", "JPEG", "MPEG4"."""
    if not value:
        return None
    upper = value.strip().upper().replace(".", "").replace("-", "")
    return _ENCODINGS.get(upper, upper)


#: Address of a camera seen only through a recorder: the recorder's ``host:port`` plus this and the channel.
CHANNEL_MARK = "/ch"


def channel_address(recorder_address: str, channel: int) -> str:
    """Address of channel ``channel`` behind the recorder at ``recorder_address`` ("host:port/ch3")."""
    return f"{recorder_address}{CHANNEL_MARK}{int(channel)}"


def split_channel(address: str) -> tuple[str, int | None]:
    """(recorder address, channel) of a channel address; (address, None) for any other address."""
    base, mark, number = address.rpartition(CHANNEL_MARK)
    if mark and base and number.isdigit():
        return base, int(number)
    return address, None


def host_of(address: str) -> str:
    """Host part of ``host:port`` / ``[v6]:port`` / a bare host (brackets stripped); a channel's is its recorder's."""
    # A recorder's channel lives at the recorder's address, so the site range rules apply to the recorder.
    address = split_channel(address)[0]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address.strip("[]")
    return host.strip("[]")


class RedactingFilter(logging.Filter):
    """A handler filter: log lines leave with credentials redacted and control characters stripped."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's own problem to report
            return True
        clean = strip_control(redact_text(message), keep_newlines=True)
        if clean != message:
            record.msg, record.args = clean, None
        return True
