#!/usr/bin/env python3
"""GStreamer ONVIF replay client for ipcamd's integration tests.

    gst_replay.py URL START END RATE [intra] [udp]

Set up as GStreamer's own ONVIF client example (gst-rtsp-server examples/
test-onvif-client.c): `rtspsrc onvif-mode=true onvif-rate-control=false is-live=false`
(TCP unless "udp"; not is-live=false, see below), every RTP stream into `rtponvifparse ! fakesink sync=false`, and a seek
sent to rtspsrc (once its first PLAY flows; see below): absolute UTC
times START and END (Unix seconds; GStreamer's ONVIF mode sends them as `Range: clock=`),
RATE (-1 for reverse; `Scale`), "intra" for the key-unit trick mode (`Frames: intra`).
Records the ONVIF replay header extension of every RTP packet that carries one, twice:
as rtspsrc received it from the network (the input of its jitterbuffer: "received") and
as rtspsrc hands it out (before rtponvifparse: "packets"). The wire-level checks (GOP
order, flags, CSeq) use "received"; what an application gets out of the pipeline is
checked by gst_replay_appsink.py. Stops once every sink has had the seek's flush and then
an EOS, after 20 s, or 3 s after the last packet. Not at an EOS message on the bus: the
first PLAY (Rate-Control: no, so the whole recording at once) ends in an EOS of its own,
which can be posted just before the seek and read from the bus just after it.
Prints one JSON line: {"packets": [[cseq, media, ntp_seconds_unix, C, E, D, T, seq], ...]
(one entry per unit: the packets of a unit, which all carry the extension, are merged),
"received": [same], "parsed": N (buffers out of rtponvifparse), "errors": [...]}.
"""
import json
import struct
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

NTP_UNIX = 2208988800


def main():
    url, start, end, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    intra = "intra" in sys.argv[5:]
    udp = "udp" in sys.argv[5:]
    Gst.init(None)
    packets = []
    received = []  # what rtspsrc got from the network (jitterbuffer input)
    parsed = [0]
    errors = []
    last_packet = [time.monotonic()]
    pipeline = Gst.Pipeline.new("p")
    src = Gst.ElementFactory.make("rtspsrc", "src")
    src.set_property("location", url)
    src.set_property("protocols", "udp" if udp else "tcp")
    src.set_property("onvif-mode", True)
    src.set_property("onvif-rate-control", False)
    import os
    for kv in os.environ.get("GST_REPLAY_PROPS", "").split():
        k, v = kv.split("=")
        src.set_property(k, int(v) if v.isdigit() else v)
    pipeline.add(src)

    def probe(pad, info, arg):
        out, media = arg
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            blist = info.get_buffer_list()
            for i in range(blist.length()):
                record(blist.get(i), out, media)
        else:
            record(info.get_buffer(), out, media)
        return Gst.PadProbeReturn.OK

    def record(buf, out, media):
        ok, m = buf.map(Gst.MapFlags.READ)
        if not ok:
            return
        data = bytes(m.data)
        buf.unmap(m)
        last_packet[0] = time.monotonic()
        if len(data) < 12 or not data[0] & 0x10:
            return
        seq = struct.unpack("!H", data[2:4])[0]
        cc = data[0] & 0x0F
        off = 12 + 4 * cc
        profile, words = struct.unpack("!HH", data[off:off + 4])
        if profile != 0xABAC or words < 3:
            return
        sec, frac, flags, cseq = struct.unpack("!IIBB", data[off + 4:off + 14])
        ntp = sec - NTP_UNIX + frac / 2**32
        if media is None:
            media = "video" if data[1] & 0x7F >= 96 or data[1] & 0x7F == 26 else "audio"
        entry = [cseq, media, ntp, bool(flags & 0x80), bool(flags & 0x40),
                 bool(flags & 0x20), bool(flags & 0x10), seq]
        # ipcamd repeats the extension on every packet of a unit (D on the first, T on
        # the last): one entry per unit, its flags the union.
        prev = next((e for e in reversed(out) if e[1] == media), None)
        if prev is not None and prev[0] == cseq and prev[2] == ntp and prev[7] + 1 == seq:
            for i in range(3, 7):
                prev[i] = prev[i] or entry[i]
            prev[7] = seq
            return
        out.append(entry)

    sinks = {}  # sink -> "before" the seek's flush, "flushed", or "eos" after the flush

    def sink_event(_pad, info, sink):
        kind = info.get_event().type
        if kind == Gst.EventType.FLUSH_STOP and seeked[0]:
            sinks[sink] = "flushed"
        elif kind == Gst.EventType.EOS and sinks[sink] == "flushed":
            sinks[sink] = "eos"
            if all(state == "eos" for state in sinks.values()):
                GLib.idle_add(loop.quit)
        return Gst.PadProbeReturn.OK

    def on_src_pad(_src, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media") or "?"
        pad.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, probe,
                      (packets, media))
        parse = Gst.ElementFactory.make("rtponvifparse", None)
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)

        def handoff(*_args):
            parsed[0] += 1

        sink.connect("handoff", handoff)
        sinks[sink] = "before"
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM
                                              | Gst.PadProbeType.EVENT_FLUSH, sink_event, sink)
        pipeline.add(parse)
        pipeline.add(sink)
        parse.link(sink)
        parse.sync_state_with_parent()
        sink.sync_state_with_parent()
        pad.link(parse.get_static_pad("sink"))

    src.connect("pad-added", on_src_pad)

    def on_jitterbuffer(_bin, jb, _session, _ssrc):
        jb.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, probe, (received, None))

    src.connect("new-manager",
                lambda _src, manager: manager.connect("new-jitterbuffer", on_jitterbuffer))
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    seeked = [True]

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            errors.append(f"{err.message} ({dbg})")
            loop.quit()

    bus.connect("message", on_message)
    flags = Gst.SeekFlags.FLUSH
    if intra:
        flags |= Gst.SeekFlags.TRICKMODE_KEY_UNITS
    ns = lambda t: int((t + NTP_UNIX) * Gst.SECOND)  # noqa: E731
    pipeline.set_state(Gst.State.PLAYING)
    t0 = time.monotonic()
    last_packet[0] = t0
    seeked[0] = False

    def watchdog():
        now = time.monotonic()
        # The example seeks before PLAYING, which crashes rtspsrc 1.22 (Debian 12) in
        # gst_pad_push_event: seek once rtspsrc's own first PLAY (from the start) flows.
        if not seeked[0] and parsed[0] > 0:
            seeked[0] = True
            last_packet[0] = now
            if not src.seek(rate, Gst.Format.TIME, flags, Gst.SeekType.SET, ns(start),
                            Gst.SeekType.SET, ns(end)):
                errors.append("seek refused")
                loop.quit()
        if now - t0 > 20 or (seeked[0] and now - last_packet[0] > 3):
            loop.quit()
            return False
        return True

    GLib.timeout_add(200, watchdog)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps({"packets": packets, "received": received, "parsed": parsed[0],
                      "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
