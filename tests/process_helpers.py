"""Start a command-line process for a test and end it for sure: in ``finally``, leaving no process or port.

Each process gets a session of its own, so everything it started (RTSP server, scan children) can be found
by session id afterwards and killed if the process's own clean-up failed; the test then fails, because the
product must not rely on that.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Sequence


def start(cmd: Sequence[str], env: dict[str, str], *, ignore_sigint: bool = False,
          merge_stderr: bool = True) -> subprocess.Popen:
    """Popen in a new session; ``ignore_sigint`` starts it as ``nohup``/``cmd &`` in a script would."""
    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=preexec if ignore_sigint else None)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(entry))
    return out


def port_closed(host: str, port: int) -> bool:
    """True when nothing accepts connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def _assert_session_gone(proc: subprocess.Popen) -> None:
    """Fail when anything of ``proc``'s session outlives it (children get a moment after the parent)."""
    deadline = time.monotonic() + 5
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = session_members(proc.pid)
    assert not left, f"processes left behind by {list(proc.args)[:3]}: {left}"


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL every process of ``proc``'s session, then ``proc`` itself."""
    for pid in session_members(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def end(proc: subprocess.Popen, sig: int = signal.SIGTERM, *, timeout_s: float = 60,
        ports: Sequence[tuple[str, int]] = ()) -> str:
    """Stop ``proc`` with ``sig`` (if still running), return its remaining output, check nothing is left.

    Whatever happens, the whole session is killed before returning or raising, so no test leaves a process
    (and its ports) behind for the next one.
    """
    out = ""
    try:
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{proc.args[:3]} did not stop within {timeout_s} s of signal {sig}") from None
        _assert_session_gone(proc)
        busy = [f"{h}:{p}" for h, p in ports if not port_closed(h, p)]
        assert not busy, f"ports still open after {proc.args[:3]} stopped: {busy}"
        return out or ""
    finally:
        _kill_session(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run(cmd: Sequence[str], *, timeout_s: float, cwd: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(capture_output=True, text=True)``, in a session of its own: on timeout (or any
    error) everything it started is killed too, and afterwards no process it started may be left."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env if env is not None else dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        _assert_session_gone(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        _kill_session(proc)
