#!/usr/bin/env python3
"""An upstream camera nobody here wrote, for the proxy tests: GStreamer's gst-rtsp-server
(RTSPOnvifServer, Python GI, Debian's gir1.2-gst-rtsp-server-1.0).

  gst_camera.py [--user U --password P] [--backchannel PREFIX [--backchannel-codec pcma]]
                [--opaque-audio] [--mute-audio N] [--per-client]

Mount /cam (shared media): H.264 from `videotestsrc is-live=true` (320x240 25 fps, x264enc
zerolatency, a keyframe every 25 frames, SPS/PPS in band too) and PCMU from
`audiotestsrc is-live=true freq=440`. With --backchannel the mount is an ONVIF media
factory whose sendonly PCMU section is decoded to raw s16le 8 kHz mono into PREFIX.N, N
counting the media the factory made (each client gets its own: the file of one is never
touched by another's); the backchannel sink has async=false, as gst-rtsp-server's ONVIF
example needs. --backchannel-codec pcma makes that section PCMA (payload 8) instead.
With --user/--password the server demands Digest authentication.
With --opaque-audio the audio is two tracks ipcamd does not depacketize instead of PCMU:
Opus (`opusenc ! rtpopuspay`, 48 kHz stereo, pt 97) and G.726-32 (`avenc_g726 !
rtpg726pay`, 8 kHz, pt 98), for the opaque pass-through test.

With --per-client each client gets a media (pipeline) of its own instead of one shared by
all: under load, a shared media of gst-rtsp-server sometimes never sends its audio to any
client (seen with three clients over TCP, UDP and UDP at once: video flowed, audio RTCP
came, audio RTP never did), and a client that sets its session up again gets the same dead
media; a per-client media is made anew.
With --mute-audio N the media is made per client (not shared) and the first N media made
send their first audio packet and no other (a camera that announces a track and does not
send it; a pad probe on the audio payloader drops the rest), the next ones send it all.

Prints "ready PORT <n>" on stdout once listening on 127.0.0.1 port n (chosen by the system).
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=500 "
    "! video/x-h264,profile=constrained-baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=-1"
)
AUDIO = (
    "audiotestsrc is-live=true freq=440 volume=0.3 samplesperbuffer=160 "
    "! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
)

OPAQUE_AUDIO = (
    "audiotestsrc is-live=true freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=2 "
    "! opusenc ! rtpopuspay name=pay1 pt=97 "
    "audiotestsrc is-live=true freq=660 volume=0.3 samplesperbuffer=160 "
    "! audio/x-raw,rate=8000,channels=1 ! avenc_g726 bitrate=32000 ! rtpg726pay name=pay2 pt=98"
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--backchannel")
    p.add_argument("--opaque-audio", action="store_true")
    p.add_argument("--backchannel-codec", default="pcmu", choices=["pcmu", "pcma"])
    p.add_argument("--mute-audio", type=int, default=0)
    p.add_argument("--per-client", action="store_true")
    a = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPOnvifServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    if a.backchannel:
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        pt, name, depay, dec = {
            "pcmu": (0, "PCMU", "rtppcmudepay", "mulawdec"),
            "pcma": (8, "PCMA", "rtppcmadepay", "alawdec"),
        }[a.backchannel_codec]
        factory.set_backchannel_launch(
            f'( capsfilter caps="application/x-rtp,media=audio,payload={pt},clock-rate=8000,'
            f'encoding-name={name}" name=depay_backchannel ! {depay} ! {dec} '
            "! audio/x-raw,format=S16LE ! filesink name=bcsink buffer-mode=unbuffered async=false )"
        )
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia.__gtype__)
        made = [0]

        def configure(_factory, media):
            made[0] += 1
            sink = media.get_element().get_by_name("bcsink")
            if sink is not None:
                sink.set_property("location", f"{a.backchannel}.{made[0]}")

        factory.connect("media-configure", configure)
    else:
        factory = GstRtspServer.RTSPMediaFactory()
    audio = OPAQUE_AUDIO if a.opaque_audio else AUDIO
    factory.set_launch(f"( {VIDEO} {audio} )")
    # Shared: one pipeline for every client (the backchannel part is per client anyway).
    factory.set_shared(not (a.backchannel or a.mute_audio or a.per_client))
    if a.mute_audio:
        muted = [0]

        def mute(_factory, media):
            muted[0] += 1
            if muted[0] > a.mute_audio:
                return
            sent = [0]

            def drop_after_first(_pad, _info):
                sent[0] += 1
                return Gst.PadProbeReturn.OK if sent[0] == 1 else Gst.PadProbeReturn.DROP

            pay = media.get_element().get_by_name("pay1")
            pay.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, drop_after_first)

        factory.connect("media-configure", mute)
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_digest(a.user, a.password, token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.stderr.write("cannot attach the RTSP server\n")
        return 1
    print(f"ready PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
