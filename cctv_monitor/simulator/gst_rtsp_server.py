"""RTSP server for the simulated fleet, run as ``/usr/bin/python3 gst_rtsp_server.py`` (GStreamer's gi bindings
exist for Debian's Python only, not for the project venv).

Reads a JSON config on argv[1]: ``{"servers": [{"address", "port", "netns", "tcp_only", "port_fallback",
"mounts": [{"path", "launch"}]}]}``. Prints one JSON line ``{"ready": true, "servers": [...bound ports]}``
(or ``{"error": ...}``) and serves until its stdin closes, so it never outlives the simulator.
This file must not import anything from the project (it runs under another interpreter).
"""

import ctypes
import json
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    """Move this thread into the network namespace open on ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def attach(entry, context):
    """Create one RTSP server (inside its namespace when given); return its bound port."""
    server = GstRtspServer.RTSPServer()
    server.set_address(entry["address"])
    server.set_service(str(entry["port"]))
    server.set_backlog(64)
    mounts = server.get_mount_points()
    for mount in entry["mounts"]:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(mount["launch"])
        # A media (pipeline) per session, not one shared per mount: each session plays the clip from its
        # start, a keyframe, as a camera that sends an IDR to a new client does. A shared media made a
        # client that joined a running session wait for the next keyframe (up to a GOP, 2 s at GOP 50).
        # Its cost is one pipeline per session, which a shared media also paid whenever sessions did
        # not overlap (it is prepared on the first client and torn down after the last).
        factory.set_shared(False)
        if entry.get("tcp_only"):
            # UDP sockets would be created later in this thread's (host) namespace: interleaved TCP only.
            factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        mounts.add_factory(mount["path"], factory)
    own_ns = None
    if entry.get("netns"):
        own_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/var/run/netns/" + entry["netns"], os.O_RDONLY)
        try:
            setns(target)
        finally:
            os.close(target)
    try:
        # attach() returns 0 (it does not raise) when the socket cannot be bound, e.g. the port is busy.
        if not server.attach(context) and entry.get("port_fallback"):
            server.set_service("0")  # the planned port is busy (a parallel test run): take a free one
            server.attach(context)
    finally:
        if own_ns is not None:
            setns(own_ns)
            os.close(own_ns)
    return server, server.get_bound_port()


def main():
    """Start every server from the config and run the GLib main loop."""
    Gst.init(None)
    with open(sys.argv[1], encoding="utf-8") as fh:
        config = json.load(fh)
    loop = GLib.MainLoop()
    servers, ports = [], []
    try:
        for entry in config["servers"]:
            server, port = attach(entry, None)
            if port <= 0:
                raise RuntimeError("cannot listen on %s:%s (address missing or port in use)"
                                   % (entry["address"], entry["port"]))
            servers.append(server)
            ports.append(port)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one JSON line
        print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}), flush=True)
        return 1

    def on_stdin(_source, _condition):
        data = os.read(0, 4096)
        if not data:  # parent closed the pipe or died
            loop.quit()
            return False
        return True

    GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR, on_stdin)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, lambda: loop.quit() or False)
    print(json.dumps({"ready": True, "ports": ports}), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
