#!/usr/bin/python3
"""GStreamer's ONVIF RTSP server (gst-rtsp-server's RTSPOnvifServer), a backchannel peer
that nobody in this project wrote, for the `talk` end-to-end tests.

Usage: gst_backchannel_server.py OUT_DIR

Serves one mount point per backchannel codec; each writes what it receives, decoded, as
16-bit mono WAV to OUT_DIR/<mount>.wav:

  /pcmu  PCMU/8000 (PT 0)      /pcma  PCMA/8000 (PT 8)
  /g726  G726-32/8000 (PT 96)  /l16   L16/16000/1 (PT 97)
  /aac   MPEG4-GENERIC/16000/1 AAC-hbr config=1408 (PT 98)
  /opus  OPUS/48000/2 (PT 99)

/plain is an ordinary (non-ONVIF) RTSPMediaFactory: DESCRIBE with the backchannel
Require tag gets 551 Option not supported.

Listens on a free port on 127.0.0.1 and prints "PORT <n>" once ready.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

OUT = sys.argv[1]
TO_WAV = "audioconvert ! audioresample ! audio/x-raw,format=S16LE,channels=1 ! wavenc ! filesink location={out}/{name}.wav async=false"

MOUNTS = {
    "pcmu": ('payload=0, clock-rate=8000, encoding-name=PCMU', "rtppcmudepay ! mulawdec"),
    "pcma": ('payload=8, clock-rate=8000, encoding-name=PCMA', "rtppcmadepay ! alawdec"),
    "g726": ('payload=96, clock-rate=8000, encoding-name=G726-32',
             "rtpg726depay force-aal2=false ! avdec_g726"),
    "l16": ('payload=97, clock-rate=16000, encoding-name=L16, channels=1',
            "rtpL16depay"),
    "aac": ('payload=98, clock-rate=16000, encoding-name=MPEG4-GENERIC, streamtype=(string)5, '
            'profile-level-id=(string)1, mode=(string)AAC-hbr, config=(string)1408, '
            'sizelength=(string)13, indexlength=(string)3, indexdeltalength=(string)3',
            "rtpmp4gdepay ! avdec_aac"),
    "opus": ('payload=99, clock-rate=48000, encoding-name=OPUS, encoding-params=(string)2',
             "rtpopusdepay ! opusdec"),
}


def main():
    Gst.init(None)
    server = GstRtspServer.RTSPOnvifServer.new()
    server.set_address("127.0.0.1")
    server.set_service("0")
    mounts = server.get_mount_points()
    for name, (caps, decode) in MOUNTS.items():
        f = GstRtspServer.RTSPOnvifMediaFactory.new()
        # talk sets up only the backchannel stream: pay0 then has no transport and its
        # pushes return not-linked, which would put the whole media (backchannel included)
        # into error; a tee that allows not-linked absorbs that.
        f.set_launch("( audiotestsrc is-live=true wave=silence ! mulawenc ! "
                     "tee allow-not-linked=true ! rtppcmupay name=pay0 )")
        f.set_backchannel_launch(
            '( capsfilter caps="application/x-rtp, media=audio, %s" name=depay_backchannel ! %s ! %s )'
            % (caps, decode, TO_WAV.format(out=OUT, name=name)))
        f.set_shared(False)
        f.set_media_gtype(GstRtspServer.RTSPOnvifMedia)
        mounts.add_factory("/" + name, f)
    plain = GstRtspServer.RTSPMediaFactory.new()
    plain.set_launch("( audiotestsrc is-live=true wave=silence ! mulawenc ! rtppcmupay name=pay0 )")
    mounts.add_factory("/plain", plain)
    server.attach(None)
    print("PORT %d" % server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
