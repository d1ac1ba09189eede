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
        "videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=25/1 "
        "! x264enc tune=zerolatency key-int-max=25 bitrate=400 ! s.sink_0 "
        "audiotestsrc is-live=true samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 "
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

    pipeline.set_state(Gst.State.PLAYING)
    drain(seconds)
    if not errors:
        # PAUSE, and wait for its answer (the state change completes after it).
        pipeline.set_state(Gst.State.PAUSED)
        pipeline.get_state(10 * Gst.SECOND)
        drain(0.5)
    pipeline.set_state(Gst.State.NULL)
    if errors:
        print("errors: " + "; ".join(errors), file=sys.stderr)
        sys.exit(1)
    print(f"published {seconds} s")


if __name__ == "__main__":
    main()
