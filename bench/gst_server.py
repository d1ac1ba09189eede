#!/usr/bin/python3
"""The reference server for bench/run: GStreamer's gst-rtsp-server (Debian packages, via
Python GI; run with /usr/bin/python3).

  gst_server.py PORT FILE.h264|FILE.mp4 [--plain]     (PORT 0: any free port)

Mounts:
  /live  RTSPMediaFactory, set_shared(True), rtph264pay config-interval=-1 as pay0, fed by
         - FILE.h264 (what bench/run uses): the H.264 elementary stream (Annex B, made from
           the benchmark MP4 with ffmpeg -c copy -bsf h264_mp4toannexb) looped forever at
           25 fps: ( multifilesrc loop=true ! video/x-h264,... ! h264parse ! rtph264pay );
         - FILE.mp4: ( filesrc ! qtdemux ! h264parse ! rtph264pay ), the pipeline of the
           issue. It is not looped: the shared media ends at EOS (after the file's 60 s)
           and never restarts while a client holds it; it is built anew for the next
           client once every client left. Same bytes either way; comparing the two (bench/
           loadgen.md) showed no difference in CPU per GB beyond the machine's noise.
  /back  RTSPOnvifMediaFactory (ONVIF backchannel) as in gst-rtsp-server's
         test-onvif-backchannel example: a silent live PCMU source plus a sendonly PCMU
         section decoded into a fakesink (rtppcmudepay ! mulawdec).

--plain: GstRtspServer.RTSPServer instead of RTSPOnvifServer (then /back is not mounted:
the backchannel needs the ONVIF server); for comparing the two.

Prints "ready PORT <n>" on stdout once listening on 127.0.0.1 port n.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if a != "--plain"]
    plain = "--plain" in sys.argv[1:]
    if len(args) != 2:
        sys.stderr.write("usage: gst_server.py PORT FILE.h264|FILE.mp4 [--plain]\n")
        return 2
    port, path = args
    Gst.init(None)
    server = GstRtspServer.RTSPServer() if plain else GstRtspServer.RTSPOnvifServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    if path.endswith(".mp4"):
        source = f'filesrc location="{path}" ! qtdemux'
    else:
        source = (f'multifilesrc location="{path}" loop=true '
                  "! video/x-h264,stream-format=byte-stream,framerate=25/1")
    video = f"{source} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
    live = GstRtspServer.RTSPMediaFactory()
    live.set_launch(f"( {video} )")
    live.set_shared(True)
    mounts = server.get_mount_points()
    mounts.add_factory("/live", live)

    if plain:
        return serve(server, port)
    back = GstRtspServer.RTSPOnvifMediaFactory()
    # A cheap live source for the receive direction (the talk client does not SETUP it).
    back.set_launch(
        "( audiotestsrc is-live=true wave=silence samplesperbuffer=160 "
        "! mulawenc ! rtppcmupay name=pay0 )"
    )
    back.set_backchannel_launch(
        "( capsfilter caps=\"application/x-rtp,media=audio,payload=0,clock-rate=8000,"
        'encoding-name=PCMU" name=depay_backchannel ! rtppcmudepay ! mulawdec '
        "! fakesink async=false )"
    )
    back.set_shared(False)
    back.set_media_gtype(GstRtspServer.RTSPOnvifMedia.__gtype__)
    mounts.add_factory("/back", back)
    return serve(server, port)


def serve(server, port):
    if server.attach(None) == 0:
        sys.stderr.write(f"gst_server.py: cannot listen on 127.0.0.1:{port}\n")
        return 1
    print(f"ready PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
