#!/usr/bin/env python3
"""GStreamer ONVIF replay as an application receives it, for ipcamd's integration tests.

    gst_replay_appsink.py URL START END RATE [intra]

A pipeline built the way a GStreamer application would: `rtspsrc onvif-mode=true
onvif-rate-control=false` over TCP, and for every stream rtspsrc adds: `rtponvifparse`,
then for H.264 video `rtph264depay ! appsink`, for anything else a `fakesink` (both with
sync=false, otherwise defaults: they preroll, as sinks do). Once the first PLAY flows, a
flushing seek to START..END (Unix seconds; sent as `Range: clock=`) at RATE (-1: reverse,
`Scale: -1`), with TRICKMODE_KEY_UNITS when "intra" is given (`Frames: intra`).

Records what reaches the appsink after the seek: each buffer's PTS, which rtponvifparse sets
from the capture time in the ONVIF replay header extension (NTP, so shifted here to Unix
seconds), and whether it is a keyframe. Only buffers in the seek's segment (its rate and
start) count, not the last ones of the first PLAY. Stops 3 s after the last buffer or 20 s
after the seek: not at the first EOS, which may be the first PLAY's (with Rate-Control: no
the whole recording arrives at once and ends in T, i.e. EOS, perhaps after the seek was
sent).

Prints one JSON line: {"frames": [[capture_unix_seconds, keyframe], ...], "eos": bool (an
EOS reached the bus after the seek's first buffer), "errors": [...]}.
"""
import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

NTP_UNIX = 2208988800


def ns(t):
    """Unix seconds to GStreamer's ONVIF clock time (ns since 1900)."""
    return int((t + NTP_UNIX) * Gst.SECOND)


def main():
    url, start, end, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    intra = "intra" in sys.argv[5:]
    Gst.init(None)
    pipeline = Gst.Pipeline.new("p")
    src = Gst.ElementFactory.make("rtspsrc", "src")
    src.set_property("location", url)
    src.set_property("protocols", "tcp")
    src.set_property("onvif-mode", True)
    src.set_property("onvif-rate-control", False)
    pipeline.add(src)
    state = {"seeked": False, "first": 0, "eos": False, "last": time.monotonic()}
    frames = []
    errors = []
    seg_start = ns(min(start, end))

    def on_sample(sink):
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        seg = sample.get_segment()
        state["last"] = time.monotonic()
        if not state["seeked"]:
            state["first"] += 1
        elif seg.rate == rate and seg.start == seg_start and buf.pts != Gst.CLOCK_TIME_NONE:
            frames.append([buf.pts / Gst.SECOND - NTP_UNIX,
                           not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)])
        return Gst.FlowReturn.OK

    def on_pad(_src, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        chain = [Gst.ElementFactory.make("rtponvifparse", None)]
        if s.get_string("media") == "video" and s.get_string("encoding-name") == "H264":
            sink = Gst.ElementFactory.make("appsink", None)
            sink.set_property("emit-signals", True)
            sink.connect("new-sample", on_sample)
            chain += [Gst.ElementFactory.make("rtph264depay", None), sink]
        else:
            chain.append(Gst.ElementFactory.make("fakesink", None))
        chain[-1].set_property("sync", False)
        for e in chain:
            pipeline.add(e)
        for a, b in zip(chain, chain[1:]):
            a.link(b)
        for e in chain:
            e.sync_state_with_parent()
        pad.link(chain[0].get_static_pad("sink"))

    src.connect("pad-added", on_pad)
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            errors.append(f"{err.message} ({dbg})")
            loop.quit()
        elif msg.type == Gst.MessageType.EOS and frames:
            state["eos"] = True

    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    t0 = time.monotonic()

    def watchdog():
        now = time.monotonic()
        if not state["seeked"] and state["first"] > 0:
            # Seek once the first PLAY flows (seeking before PLAYING crashes rtspsrc 1.22,
            # see gst_replay.py).
            state["seeked"] = True
            state["last"] = state["at"] = now
            flags = Gst.SeekFlags.FLUSH
            if intra:
                flags |= Gst.SeekFlags.TRICKMODE_KEY_UNITS
            if not src.seek(rate, Gst.Format.TIME, flags, Gst.SeekType.SET, ns(start),
                            Gst.SeekType.SET, ns(end)):
                errors.append("seek refused")
                loop.quit()
        if now - state.get("at", t0) > 20 or (state["seeked"] and now - state["last"] > 3):
            loop.quit()
            return False
        return True

    GLib.timeout_add(50, watchdog)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps({"frames": frames, "eos": state["eos"], "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
