#!/usr/bin/env python3
"""GStreamer rtspsrc client for ipcamd's integration tests.

Plays URL with `rtspsrc protocols=PROTO ! decodebin ! fakesink` for every stream the
server offers, for SECONDS from the first decoded buffer (the start-up, Digest round trips
and decoder plugging included, may take up to STARTUP_S before it: on a loaded machine it
has taken over 3 s), counts decoded video frames and audio buffers, and prints one JSON line:
{"video": N, "audio": M, "errors": [...], "caps": [...], "first_buffer_s": T}
(T: seconds from PLAYING to the first decoded buffer, null if none came).
Exit status 0 when the pipeline reported no error. Optional USER PASSWORD arguments set
rtspsrc's user-id and user-pw (GStreamer then answers Digest challenges itself).
"""
import json
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

# Longest wait for the first decoded buffer before giving up (counts stay 0).
STARTUP_S = 20


def main():
    url, proto, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    Gst.init(None)
    counts = {"video": 0, "audio": 0}
    errors = []
    caps_seen = []
    # When the first decoded buffer came (seconds after PLAYING); the play time runs from it.
    first = {"at": None}
    first_lock = threading.Lock()
    started = time.monotonic()
    loop = GLib.MainLoop()
    pipeline = Gst.Pipeline.new("p")
    src = Gst.ElementFactory.make("rtspsrc", "src")
    src.set_property("location", url)
    src.set_property("protocols", proto)
    src.set_property("latency", 200)
    if len(sys.argv) > 5:
        src.set_property("user-id", sys.argv[4])
        src.set_property("user-pw", sys.argv[5])
    pipeline.add(src)

    def on_decoded_pad(_decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        caps_seen.append(caps.to_string())
        kind = "video" if name.startswith("video") else "audio"
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)

        def handoff(*_args):
            counts[kind] += 1
            if first["at"] is None:
                with first_lock:
                    if first["at"] is None:
                        first["at"] = time.monotonic() - started
                        GLib.timeout_add(int(seconds * 1000), loop.quit)

        sink.connect("handoff", handoff)
        pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_src_pad(_src, pad):
        dec = Gst.ElementFactory.make("decodebin", None)
        dec.connect("pad-added", on_decoded_pad)
        pipeline.add(dec)
        dec.sync_state_with_parent()
        pad.link(dec.get_static_pad("sink"))

    src.connect("pad-added", on_src_pad)
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            errors.append(f"{err.message} ({dbg})")
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()

    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)

    def startup_over():
        if first["at"] is None:
            loop.quit()
        return False

    GLib.timeout_add(STARTUP_S * 1000, startup_over)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps({"video": counts["video"], "audio": counts["audio"], "errors": errors,
                      "caps": caps_seen, "first_buffer_s": first["at"]}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
