#!/usr/bin/env python3
"""GStreamer ONVIF backchannel client for ipcamd's integration tests.

`rtspsrc backchannel=onvif` plays URL over PROTO (tcp/udp); when rtspsrc offers the
sendonly stream (select-stream with an `a-sendonly` field) a second pipeline
`audiotestsrc freq=FREQ ! <G.711 encoder> ! <payloader> ! appsink` produces RTP, which is
pushed with the `push-backchannel-sample` action signal (GStreamer >= 1.22; falls back
to `push-backchannel-buffer`). Runs SECONDS, prints one JSON line:
{"pushed": N, "caps": "...", "errors": [...]}; exit 0 when nothing failed.
"""
import json
import os
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    url, proto, seconds, freq = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    Gst.init(None)
    state = {"pushed": 0, "caps": None, "errors": [], "stream": None}
    pipeline = Gst.Pipeline.new("p")
    src = Gst.ElementFactory.make("rtspsrc", "r")
    src.set_property("location", url)
    src.set_property("protocols", proto)
    src.set_property("latency", 100)
    src.set_property("backchannel", "onvif")
    pipeline.add(src)
    back = {}
    keep = []

    def on_pad(_src, pad):
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", False)
        pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def new_sample(appsink):
        sample = appsink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        # GStreamer 1.22's rtspsrc unrefs the sample it is given although the signal does
        # not take ownership, and appsink reuses its sample object: hand over a fresh
        # sample and keep a Python reference to it until exit so nobody frees it twice.
        fresh = Gst.Sample.new(sample.get_buffer(), sample.get_caps(), sample.get_segment(), None)
        keep.append(fresh)
        ret = src.emit("push-backchannel-sample", state["stream"], fresh)
        # Pushes before rtspsrc has set the stream up fail (not linked / flushing); keep
        # the test source running regardless and count only what rtspsrc accepted.
        if os.environ.get("GST_TALK_DEBUG"):
            print("push", ret, file=sys.stderr, flush=True)
        if ret == Gst.FlowReturn.OK:
            if state["pushed"] == 0:
                # Talk for SECONDS from the first accepted packet, however long the RTSP
                # set-up took on a loaded machine.
                GLib.idle_add(lambda: GLib.timeout_add(int(seconds * 1000), loop.quit) and False)
            state["pushed"] += 1
        return Gst.FlowReturn.OK

    def select_stream(_src, idx, caps):
        s = caps.get_structure(0)
        if not s.has_field("a-sendonly"):
            return True
        state["stream"] = idx
        state["caps"] = caps.to_string()
        s = s.copy()
        s.set_name("application/x-rtp")
        for name in [s.nth_field_name(i) for i in range(s.n_fields())]:
            if name.startswith("a-"):
                s.remove_field(name)
        enc = s.get_string("encoding-name").upper()
        rate = s.get_int("clock-rate")[1]
        chain = {"PCMU": "mulawenc ! rtppcmupay", "PCMA": "alawenc ! rtppcmapay"}.get(enc)
        if chain is None:
            state["errors"].append(f"test client cannot encode {enc}")
            return True
        p = Gst.parse_launch(
            f"audiotestsrc is-live=true freq={freq} volume=0.5 samplesperbuffer={rate // 50} ! "
            f"audio/x-raw,rate={rate},channels=1 ! {chain} ! appsink name=out"
        )
        out = p.get_by_name("out")
        out.set_property("caps", Gst.Caps.from_string(s.to_string()))
        out.set_property("emit-signals", True)
        out.connect("new-sample", new_sample)
        back["pipe"] = p
        p.set_state(Gst.State.PLAYING)
        return True

    loop = GLib.MainLoop()
    src.connect("pad-added", on_pad)
    src.connect("select-stream", select_stream)
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            state["errors"].append(f"{err.message} ({dbg})")
            loop.quit()

    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    # Give up if nothing could be pushed within 30 s.
    GLib.timeout_add(30_000, loop.quit)
    loop.run()
    print(json.dumps({"pushed": state["pushed"], "caps": state["caps"], "errors": state["errors"]}), flush=True)
    code = 1 if state["errors"] or state["stream"] is None or state["pushed"] == 0 else 0
    # Stopping rtspsrc sends TEARDOWN; GStreamer 1.22 can hang in that state change after
    # backchannel use, so a watchdog ends the process (closing the connection also ends
    # the session on the server).
    threading.Timer(3.0, lambda: os._exit(code)).start()
    if "pipe" in back:
        back["pipe"].set_state(Gst.State.NULL)
    pipeline.set_state(Gst.State.NULL)
    os._exit(code)


if __name__ == "__main__":
    main()
