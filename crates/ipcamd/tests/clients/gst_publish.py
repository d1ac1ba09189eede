#!/usr/bin/env python3
"""GStreamer rtspclientsink publisher for ipcamd's integration tests.

Publishes SECONDS of H.264 (x264enc, 320x180 25 fps) + PCMU (8 kHz) to URL with
`rtspclientsink protocols=PROTO`, then leaves the way an application does it: PAUSED
(rtspclientsink sends PAUSE and waits for the answer), then NULL (TEARDOWN).

Why not `gst-launch-1.0 ... num-buffers=N`: GStreamer 1.22's rtspclientsink has two races at
the end of such a pipeline, both inside GStreamer and seen on an idle server: (1) the
internal RTP session sometimes never posts EOS after its sources ended (gst-launch then
waits for ever), and (2) gst-launch's set_state(NULL) right after EOS sends CLOSE while the
PAUSE it started is still waiting for its answer, so the PAUSE's read is cancelled and
reported as "Could not send message. (Received end-of-file)". Stepping through PAUSED and
waiting for that state avoids both, and keeps what the server sees the same (PAUSE, then
TEARDOWN).

A third race, over TCP: going to PAUSED, rtspclientsink first cancels its connection's
pending I/O (gst_rtsp_connection_flush) and re-arms it only when its own thread picks up the
PAUSE. A media packet that the streaming thread starts to write in between fails as
cancelled, and GStreamer 1.22's writev_bytes() reports a failed write that wrote nothing as
GST_RTSP_EEOF, so the application gets "Could not send message. (Received end-of-file)"
although the server closed nothing. On a loaded 2-core machine the window is long enough
to hit (a CI run failed that way; 1 in 8 runs next to three busy loops). So the sources are
paused first and the last packets given 0.5 s to leave, before the pipeline goes to PAUSED.

Going to PAUSED does not wait for the PAUSE either: rtspclientsink answers NO_PREROLL at
once and sends the request from its own thread, and going on to NULL before the answer came
cancels it (race 2 again). So this then waits for the element's PROGRESS message "Sent
PAUSE request" (posted once the answer is in), up to 20 s.

Prints one line "published N s" and exits 0 when no error was reported.
"""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def main():
    url, proto, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"rtspclientsink name=s location={url} protocols={proto} "
        "videotestsrc name=v is-live=true ! video/x-raw,width=320,height=180,framerate=25/1 "
        "! x264enc tune=zerolatency key-int-max=25 bitrate=400 ! s.sink_0 "
        "audiotestsrc name=a is-live=true samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 "
        "! mulawenc ! s.sink_1"
    )
    bus = pipeline.get_bus()
    errors = []

    def drain(timeout_s):
        """Reads the bus for timeout_s; records errors."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            msg = bus.timed_pop_filtered(int(left * Gst.SECOND), Gst.MessageType.ERROR)
            if msg is None:
                return
            err, dbg = msg.parse_error()
            errors.append(f"{err.message} ({dbg})")
            return

    def await_pause(timeout_s):
        """Reads the bus until rtspclientsink says its PAUSE was answered; records errors,
        a cancelled PAUSE and a timeout."""
        deadline = time.monotonic() + timeout_s
        wanted = Gst.MessageType.ERROR | Gst.MessageType.PROGRESS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                errors.append(f"no answer to PAUSE within {timeout_s} s")
                return
            msg = bus.timed_pop_filtered(int(left * Gst.SECOND), wanted)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                errors.append(f"{err.message} ({dbg})")
                return
            kind, _code, text = msg.parse_progress()
            if "PAUSE" not in text:
                continue
            if kind == Gst.ProgressType.COMPLETE:
                return
            if kind in (Gst.ProgressType.CANCELED, Gst.ProgressType.ERROR):
                errors.append(f"PAUSE {kind.value_nick}: {text}")
                return

    pipeline.set_state(Gst.State.PLAYING)
    drain(seconds)
    if not errors:
        # No more media (see race 3 above), then PAUSE (sent by rtspclientsink's thread),
        # and wait for its answer.
        for name in ("v", "a"):
            pipeline.get_by_name(name).set_state(Gst.State.PAUSED)
        drain(0.5)
    if not errors:
        pipeline.set_state(Gst.State.PAUSED)
        await_pause(20)
    pipeline.set_state(Gst.State.NULL)
    if errors:
        print("errors: " + "; ".join(errors), file=sys.stderr)
        sys.exit(1)
    print(f"published {seconds} s")


if __name__ == "__main__":
    main()
