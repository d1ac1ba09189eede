#!/usr/bin/env python3
"""Mouth-to-speaker latency of WebRTC talk: from the moment a tone's first audio frame is
handed to the WebRTC sender to the moment its first loud sample reaches the camera's
`exec` output (the process that would play it).

The sender is aiortc (run with the venv of scripts/test.sh: target/onvif-venv) with an
audio track that produces 20 ms frames of silence, then a 1 kHz tone from a known frame
on, and notes the wall-clock time it hands that frame over (aiortc then encodes it to Opus
and sends it). The server (release build) decodes through the usual talk path (jitter
buffer `jitter_ms`, Opus decoder, resampler to 16 kHz) and writes s16le to the stdin of
an exec output: a small Python reader that notes the wall-clock time of the first sample
above the threshold. Same machine, same clock. Includes the server's jitter buffer
(default 60 ms), not a browser's capture path or a sound card.

Usage: target/onvif-venv/bin/python bench/webrtc_talk_latency.py [--runs 5]
"""
import argparse
import asyncio
import fractions
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import array
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DETECT = r'''
import sys, time, struct
out = sys.argv[1]
noted = False
while True:
    b = sys.stdin.buffer.read(640)
    if not b:
        break
    if not noted:
        xs = struct.unpack("<%dh" % (len(b) // 2), b[: len(b) // 2 * 2])
        if any(abs(x) > 3000 for x in xs):
            open(out, "a").write("%f\n" % time.time())
            noted = True
'''


class Tone(AudioStreamTrack):
    """20 ms frames at 48 kHz: silence for `onset` frames, then a 1 kHz tone."""

    def __init__(self, onset):
        super().__init__()
        self.n = 0
        self.onset = onset
        self.sent_at = None
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        # Real-time pacing, like a microphone.
        wait = self.start + self.n * 0.02 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = 960
        if self.n >= self.onset:
            pcm = array.array("h", (int(12000 * math.sin(2 * math.pi * 1000 * (i + self.n * samples) / 48000.0))
                                    for i in range(samples)))
            if self.sent_at is None:
                self.sent_at = time.time()
        else:
            pcm = array.array("h", bytes(2 * samples))
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = 48000
        frame.pts = self.n * samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


def http(method, url, body=None, ctype=None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), r.read().decode()


async def one(base):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    tone = Tone(onset=50)  # 1 s of silence first
    pc.addTransceiver(tone, direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    _, headers, answer = http("POST", base + "/whep/live", pc.localDescription.sdp.encode(), "application/sdp")
    loc = base + headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    http("POST", loc + "/talk")
    await asyncio.sleep(2.5)
    http("DELETE", loc + "/talk")
    http("DELETE", loc)
    await pc.close()
    return tone.sent_at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        detect = os.path.join(tmp, "detect.py")
        onsets = os.path.join(tmp, "onsets.txt")
        open(detect, "w").write(DETECT)
        cfg = os.path.join(tmp, "ipcamd.toml")
        open(cfg, "w").write(
            f'[server]\nrtsp_listen = "127.0.0.1:19654"\nhttp_listen = "127.0.0.1:19680"\n'
            f'data_dir = "{tmp}/data"\n[onvif]\ndiscovery = false\n[webrtc]\nudp_listen = "127.0.0.1:19690"\n'
            f'[[camera]]\nname = "live"\nwidth = 320\nheight = 180\nrecord = false\n'
            f'[camera.backchannel]\noutputs = ["exec"]\nexec = "{sys.executable} {detect} {onsets}"\n')
        p = subprocess.Popen([os.path.join(a.bin_dir, "ipcamd"), "serve", "--config", cfg, "--log", "warn"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", 19680), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(1)
            lat = []
            for i in range(a.runs):
                sent = asyncio.run(one("http://127.0.0.1:19680"))
                time.sleep(0.5)
                heard = [float(x) for x in open(onsets).read().split()] if os.path.exists(onsets) else []
                if sent and len(heard) == i + 1:
                    lat.append((heard[-1] - sent) * 1000)
                print(f"run {i + 1}: {lat[-1] if len(lat) == i + 1 else 'no onset heard'}", flush=True)
        finally:
            p.kill()
    lat.sort()
    print(json.dumps({"runs": a.runs, "heard": len(lat), "latency_ms": [round(x, 1) for x in lat],
                      "p50_ms": round(lat[len(lat) // 2], 1) if lat else None}))


if __name__ == "__main__":
    main()
