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
What each backchannel media went through is appended to PREFIX.events, one line per event
(made, state, error or warning on its pipeline's bus, and on teardown how many RTP packets
reached the depayloader and how many bytes the file sink got), for a test to show when
the file stays empty. gst-rtsp-server 1.22 sometimes leaves the elements that receive a
backchannel (appsrc over TCP, udpsrc over UDP) stopped while the rest plays; they are
brought up here, and stderr says so (see wake_receivers).
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
import time

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

        events = open(f"{a.backchannel}.events", "a", buffering=1)

        def event(n, what):
            events.write(f"{time.monotonic():.3f} media {n}: {what}\n")

        def configure(_factory, media):
            made[0] += 1
            n = made[0]
            sink = media.get_element().get_by_name("bcsink")
            if sink is None:
                event(n, "made without a backchannel")
                return
            sink.set_property("location", f"{a.backchannel}.{n}")
            event(n, f"made, backchannel into {a.backchannel}.{n}")
            counts = {"rtp": 0, "bytes": 0}

            def count_rtp(_pad, _info):
                counts["rtp"] += 1
                return Gst.PadProbeReturn.OK

            def count_bytes(_pad, info):
                counts["bytes"] += info.get_buffer().get_size()
                return Gst.PadProbeReturn.OK

            depay = media.get_element().get_by_name("depay_backchannel")
            depay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_rtp)
            sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_bytes)

            def on_bus(_bus, msg):
                if msg.type in (Gst.MessageType.ERROR, Gst.MessageType.WARNING):
                    err, _debug = msg.parse_error() if msg.type == Gst.MessageType.ERROR \
                        else msg.parse_warning()
                    event(n, f"{msg.type.first_value_nick} from {msg.src.get_name()}: "
                             f"{err.message}")

            def on_state(_media, state):
                event(n, f"state {Gst.State(state).value_nick}")
                pipeline = media.get_element().get_parent()
                if state == Gst.State.PLAYING and pipeline is not None \
                        and not counts.get("watched"):
                    counts["watched"] = True
                    bus = pipeline.get_bus()
                    bus.enable_sync_message_emission()
                    bus.connect("sync-message", on_bus)

            def wake_receivers():
                # gst-rtsp-server 1.22 adds the elements that receive a stream (an appsrc
                # for TCP, udpsrc for UDP) at SETUP without setting their state: they come
                # up with the pipeline's next change of state. Sometimes they stay in NULL
                # or READY while the pipeline plays (seen with a client that sends
                # DESCRIBE, SETUP and PLAY back to back, more often when this process is
                # busy; our guess: the pipeline was PLAYING already, from its preparation),
                # and every packet the client sends is dropped.
                if counts.get("ended"):
                    return False
                pipeline = media.get_element().get_parent()
                if pipeline is None or pipeline.get_state(0)[1] != Gst.State.PLAYING:
                    return True
                it = pipeline.iterate_recurse()
                while True:
                    res, el = it.next()
                    if res != Gst.IteratorResult.OK:
                        break
                    state = el.get_state(0)[1]
                    if state in (Gst.State.NULL, Gst.State.READY) \
                            and not el.is_locked_state() and el.sync_state_with_parent():
                        said = (f"{el.get_name()} left in {state.value_nick} by "
                                "gst-rtsp-server: brought to its pipeline's state")
                        event(n, said)
                        sys.stderr.write(f"gst_camera.py: media {n}: {said}\n")
                return True

            GLib.timeout_add(50, wake_receivers)

            def on_unprepared(_media):
                counts["ended"] = True
                event(n, f"ended: {counts['rtp']} RTP packets at the depayloader, "
                         f"{counts['bytes']} bytes into the file")

            media.connect("new-state", on_state)
            media.connect("unprepared", on_unprepared)

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
