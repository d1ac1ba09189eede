#!/usr/bin/env python3
"""GStreamer rtspsrc client for ipcamd's integration tests.

Plays URL for SECONDS with `rtspsrc protocols=PROTO ! decodebin ! fakesink` for every
stream the server offers, counts decoded video frames and audio buffers, and prints one
JSON line: {"video": N, "audio": M, "errors": [...], "caps": [...]}.
Exit status 0 when the pipeline reported no error. Optional USER PASSWORD arguments set
rtspsrc's user-id and user-pw (GStreamer then answers Digest challenges itself).
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    url, proto, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    Gst.init(None)
    counts = {"video": 0, "audio": 0}
    errors = []
    caps_seen = []
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
    loop = GLib.MainLoop()
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
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps({"video": counts["video"], "audio": counts["audio"], "errors": errors, "caps": caps_seen}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
