"""A WHEP client built on aiortc (a WebRTC stack nobody here wrote): receives a camera's
video for --seconds, decoding every frame with aiortc's H.264 decoder, and, with --tone,
sends that WAV as Opus to the camera's backchannel (POST LOCATION/talk first).

Usage: aiortc_whep.py BASE_URL CAMERA [--seconds S] [--tone WAV]
Prints JSON: frames decoded, picture size, talk answer; exit 0 when frames arrived.
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("camera")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--tone")
    a = ap.parse_args()
    out = {"frames": 0}
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    player = None
    if a.tone:
        player = MediaPlayer(a.tone)
        pc.addTransceiver(player.audio, direction="sendrecv")
    else:
        pc.addTransceiver("audio", direction="recvonly")
    video = asyncio.get_event_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if track.kind == "video" and not video.done():
            video.set_result(track)

    await pc.setLocalDescription(await pc.createOffer())
    t0 = time.time()
    status, headers, answer = http("POST", a.base + "/whep/" + a.camera,
                                   pc.localDescription.sdp.encode(), "application/sdp")
    out["post_status"] = status
    if status != 201:
        out["error"] = answer
        print(json.dumps(out))
        sys.exit(1)
    location = a.base + headers.get("Location", "")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    if a.tone:
        out["talk_status"], _, out["talk_answer"] = http("POST", location + "/talk")
    track = await asyncio.wait_for(video, 10)
    end = time.time() + a.seconds
    while time.time() < end:
        try:
            frame = await asyncio.wait_for(track.recv(), 5)
        except asyncio.TimeoutError:
            break
        if out["frames"] == 0:
            out["first_frame_s"] = round(time.time() - t0, 3)
        out["frames"] += 1
        out["width"], out["height"] = frame.width, frame.height
    if a.tone:
        out["mute_status"], _, _ = http("DELETE", location + "/talk")
    out["delete_status"], _, _ = http("DELETE", location)
    await pc.close()
    print(json.dumps(out))
    sys.exit(0 if out["frames"] > 0 else 1)


asyncio.run(main())
