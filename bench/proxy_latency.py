#!/usr/bin/env python3
"""The latency a proxying ipcamd adds: the same frames read from the camera and from the
proxy at the same time, matched by their capture time.

  bench/proxy_latency.py BIN_DIR [--seconds 30]

Starts an ipcamd file camera (bench/media/720p25-2mbit-60s.mp4, port 18620) and a proxy of
it (port 18630, `source = "rtsp"`, TCP), then plays the video track of both over TCP
interleaved. A frame's capture time is its RTP timestamp mapped through the stream's RTCP
sender report (the proxy reports the camera's clock, see docs/proxy.md "Time"); the
arrival of a frame is that of its last packet (marker bit). Added latency = arrival at the
proxy's reader - arrival at the camera's reader, for every frame both saw (the first 3 s,
the GOP sent at once to a new reader, left out). Prints p50, p99 and max in ms.
"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy import MEDIA, make_media, serve  # noqa: E402


def request(sock, text):
    sock.sendall(text.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.decode(errors="replace").split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    while len(rest) < length:
        rest += sock.recv(4096)
    return head.decode(errors="replace"), rest[length:]


def read(port, seconds, out):
    """Plays track 0 of rtsp://127.0.0.1:PORT/live; fills out with (arrival, rtp ts) of
    each frame's last packet and the first sender report (ntp seconds, rtp ts)."""
    url = f"rtsp://127.0.0.1:{port}/live"
    s = socket.create_connection(("127.0.0.1", port))
    request(s, f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
    head, _ = request(s, f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n"
                         "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
    session = [l.split(":", 1)[1].split(";")[0].strip() for l in head.split("\r\n")
               if l.lower().startswith("session:")][0]
    _, buf = request(s, f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n")
    end = time.monotonic() + seconds
    s.settimeout(1)
    while time.monotonic() < end:
        while len(buf) >= 4 and buf[0:1] == b"$":
            ch, n = buf[1], struct.unpack(">H", buf[2:4])[0]
            if len(buf) < 4 + n:
                break
            p, buf = buf[4:4 + n], buf[4 + n:]
            now = time.monotonic()
            if ch == 0 and len(p) >= 12 and p[1] & 0x80:
                out["frames"].append((now, struct.unpack(">I", p[4:8])[0]))
            elif ch == 1 and len(p) >= 20 and p[1] == 200 and out["sr"] is None:
                sec, frac, rtp = struct.unpack(">IIII", p[8:24])[:3] if len(p) >= 24 else (0, 0, 0)
                out["sr"] = (sec + frac / 2**32, rtp)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    s.close()


def capture_ms(frames, sr, start):
    """capture time (ms, rounded) -> arrival, for frames after `start` (monotonic)."""
    ntp, rtp = sr
    out = {}
    for arrival, ts in frames:
        if arrival < start:
            continue
        d = (ts - rtp + 2**31) % 2**32 - 2**31
        out[round((ntp + d / 90000) * 1000)] = arrival
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin_dir")
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()
    make_media()
    with tempfile.TemporaryDirectory() as tmp:
        camera = serve(a.bin_dir, tmp, 18620,
                       f'[[camera]]\nname = "live"\nsource = "file"\npath = "{MEDIA}"\nrecord = false\n')
        proxy = serve(a.bin_dir, tmp, 18630,
                      '[[camera]]\nname = "live"\nsource = "rtsp"\n'
                      'url = "rtsp://127.0.0.1:18620/live"\nrecord = false\n')
        try:
            time.sleep(3)
            got = {p: {"frames": [], "sr": None} for p in (18620, 18630)}
            threads = [threading.Thread(target=read, args=(p, a.seconds, got[p])) for p in got]
            start = time.monotonic() + 3
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for p in (proxy, camera):
                p.terminate()
                p.wait()
    if any(g["sr"] is None for g in got.values()):
        sys.exit("no RTCP sender report from one of the servers")
    cam = capture_ms(got[18620]["frames"], got[18620]["sr"], start)
    prx = capture_ms(got[18630]["frames"], got[18630]["sr"], start)
    added = sorted((prx[k] - cam[k]) * 1000 for k in cam.keys() & prx.keys())
    if len(added) < 10:
        sys.exit(f"only {len(added)} frames matched (camera {len(cam)}, proxy {len(prx)})")
    p99 = added[min(len(added) - 1, int(len(added) * 0.99))]
    print(f"frames_matched={len(added)} of camera={len(cam)} proxy={len(prx)}")
    print(f"added_latency_ms_p50={statistics.median(added):.3f} added_latency_ms_p99={p99:.3f} "
          f"added_latency_ms_max={added[-1]:.3f}")


if __name__ == "__main__":
    main()
