#!/usr/bin/python3
"""gst-rtsp-server proxying a camera, the reference for bench/proxy.py (Debian packages,
via Python GI; run with /usr/bin/python3).

  gst_proxy.py PORT URL

Mount /live: a shared media `rtspsrc location=URL protocols=tcp latency=0 !
rtph264depay ! h264parse ! rtph264pay pay0 config-interval=-1` (video only: the bench
reads the video track). Prints "ready PORT <n>" once listening on 127.0.0.1 port n.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: gst_proxy.py PORT URL\n")
        return 2
    port, url = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( rtspsrc location="{url}" protocols=tcp latency=0 ! rtph264depay ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        sys.stderr.write(f"gst_proxy.py: cannot listen on 127.0.0.1:{port}\n")
        return 1
    print(f"ready PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
