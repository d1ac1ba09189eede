#!/usr/bin/env python3
"""Soak with churn: one ipcamd (release build) with four recorded cameras (synthetic, file,
published by an ffmpeg that reconnects, and a proxy of the synthetic one) under clients
that come and go for --minutes, then checks that it held up.

Clients, each in its own thread, in loops until the end:
- well-behaved readers (`ipcamd-bench readers`, TCP and UDP, 20 s each, 3 at a time per
  camera): every one must see no gap between video frames over 1 s (`time_gaps=0`);
- RTSP-over-HTTP-tunnel readers (ffmpeg, 8 s, decoding);
- churn: sessions that PLAY then close mid-stream after 0-2 s, sessions that PLAY and
  never read for 5 s, connections that send random garbage;
- talk sessions (`ipcamd talk`) cycling through every codec;
- ONVIF replay forward and in reverse (`ipcamd replay`, 3 s);
- ONVIF SOAP polling (GetProfiles, GetStreamUri) every 0.5 s;
- HTTP exports of the last 20 s (`/api/recordings/NAME/export.mp4`) and the playback API;
- WebRTC is not exercised here (it needs a browser or a WHEP client: tests/browser.rs).

Sampled every 2 s from /proc: RSS, open file descriptors, threads. Pass criteria (the
script exits 1 when one fails), over the time after warm-up (the first quarter):
- RSS grows by at most max(16 MiB, 20 %), fds by at most 16, threads by at most 4
  (comparing the mean of the first and last fifth of the samples after warm-up);
- no `panicked` and no ERROR line in the server's log;
- every well-behaved reader: no frame gap over 1 s, no error;
- the synthetic and file cameras' recordings: one section each (no gap);
- after the clients stop and the session timeout passes: no session and no connection
  left open but the proxy camera's own one to `syn` (`/api/stats`), and
  `sessions_created` counts at least the sessions made.

Writes bench/RESULTS-soak.md (or --out) and bench/soak.csv (the samples).
Usage: bench/soak.py [--minutes 60] [--bin-dir target/release]
"""
import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy import MEDIA, make_media  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTSP, HTTP = 19754, 19780
CODECS = ["PCMU/8000", "PCMA/8000", "PCMU/16000", "G726-32/8000", "G726-16/8000",
          "MPEG4-GENERIC/16000/1", "opus/48000/2", "L16/16000"]
CAMERAS = ["syn", "file", "pub", "proxy"]


def kv(text):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", text)}


class Soak:
    def __init__(self, a, tmp):
        self.a = a
        self.tmp = tmp
        self.until = time.time() + a.minutes * 60
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []
        self.reader_runs = []

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)

    def running(self):
        return time.time() < self.until

    def run(self, cmd, timeout):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"timed out: {' '.join(cmd[:4])}")
            return None

    # --- clients -------------------------------------------------------------------
    def online(self, camera, limit_s=30):
        """Waits until `camera` delivers (a publisher or an upstream takes a moment)."""
        end = time.time() + limit_s
        while time.time() < end:
            try:
                _, b = self.http("/api/stats")
                if any(c["name"] == camera and c["online"] and c["frames_in"] > 0
                       for c in json.loads(b)["cameras"]):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.fail(f"camera {camera} not online after {limit_s} s")

    def readers(self, camera, transport):
        bench = os.path.join(self.a.bin_dir, "ipcamd-bench")
        self.online(camera)
        while self.running():
            left = self.until - time.time()
            if left < 8:
                break
            r = self.run([bench, "readers", "--url", f"rtsp://127.0.0.1:{RTSP}/{camera}", "-n", "3",
                          "--duration", str(min(20, left - 5)), "--transport", transport,
                          "--gap-ms", "1000", "--settle", "1"], 90)
            if r is None:
                continue
            k = kv(r.stdout)
            self.count("reader_sessions", 3)
            self.count("bytes_read", int(k.get("bytes", 0)))
            with self.lock:
                self.reader_runs.append((camera, transport, k))
            if r.returncode != 0 or k.get("errors") != "0" or k.get("time_gaps") != "0":
                self.fail(f"readers {camera} {transport}: rc={r.returncode} {r.stdout.strip()} {r.stderr.strip()[:300]}")

    def tunnel(self, camera):
        while self.running():
            r = self.run(["ffmpeg", "-v", "error", "-rtsp_transport", "http", "-i",
                          f"rtsp://127.0.0.1:{HTTP}/{camera}", "-t", "8", "-f", "null", "-"], 40)
            self.count("tunnel_sessions")
            if r is not None and r.returncode != 0:
                self.fail(f"tunnel {camera}: {r.stderr.strip()[:300]}")

    def raw_session(self, camera, mode):
        """PLAY over TCP, then close after 0-2 s (`drop`) or hold without reading (`stall`)."""
        s = socket.create_connection(("127.0.0.1", RTSP), timeout=5)
        url = f"rtsp://127.0.0.1:{RTSP}/{camera}"

        def req(text):
            s.sendall(text.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            head = data.split(b"\r\n\r\n")[0].decode(errors="replace")
            m = re.search(r"Content-Length:\s*(\d+)", head, re.I)
            body = data.split(b"\r\n\r\n", 1)[1]
            want = int(m.group(1)) if m else 0
            while len(body) < want:
                body += s.recv(4096)
            return head
        d = req(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
        if d.startswith("RTSP/1.0 503"):
            # The camera is offline (the published one between two publisher runs): the
            # right answer, not a failure.
            s.close()
            self.count("offline_answers")
            return
        h = req(f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
        m = re.search(r"Session:\s*([^;\r\n]+)", h)
        if not m:
            raise OSError(f"SETUP of {camera} answered without a session: {h.splitlines()[0] if h else '(nothing)'}")
        sid = m.group(1)
        s.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {sid}\r\n\r\n".encode())
        if mode == "drop":
            end = time.time() + random.uniform(0, 2)
            while time.time() < end:
                s.recv(65536)
        else:
            time.sleep(5)
        s.close()

    def churn(self):
        while self.running():
            mode = random.choice(["drop", "drop", "stall", "garbage"])
            try:
                if mode == "garbage":
                    with socket.create_connection(("127.0.0.1", random.choice([RTSP, HTTP])), timeout=5) as s:
                        s.sendall(os.urandom(random.randint(1, 4096)))
                        s.settimeout(2)
                        try:
                            s.recv(4096)
                        except OSError:
                            pass
                    self.count("garbage_connections")
                else:
                    self.raw_session(random.choice(CAMERAS), mode)
                    self.count(f"{mode}_sessions")
            except (OSError, AttributeError) as e:
                self.fail(f"churn {mode}: {e}")
            time.sleep(0.2)

    def talk(self):
        ipcamd = os.path.join(self.a.bin_dir, "ipcamd")
        # AAC and Opus are sent from files `ipcamd talk` does not encode itself.
        files = {}
        for codec, name, args in (("MPEG4-GENERIC/16000/1", "tone.aac", ["-ar", "16000", "-c:a", "aac"]),
                                  ("opus/48000/2", "tone.opus", ["-ar", "48000", "-c:a", "libopus"])):
            path = os.path.join(self.tmp, name)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=1000:d=3",
                            "-ac", "1", *args, path], check=True)
            files[codec] = ["--input", path]
        i = 0
        while self.running():
            codec = CODECS[i % len(CODECS)]
            i += 1
            r = self.run([ipcamd, "talk", f"rtsp://127.0.0.1:{RTSP}/syn", "--codec", codec,
                          *files.get(codec, []), "--duration", "2"], 30)
            self.count("talk_sessions")
            if r is not None and r.returncode != 0:
                self.fail(f"talk {codec}: {r.stderr.strip()[:300]}")
            time.sleep(1)

    def replay(self):
        ipcamd = os.path.join(self.a.bin_dir, "ipcamd")
        # 30 s of footage first.
        time.sleep(32)
        while self.running():
            now = time.time()
            t = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
            for args in (["--from", t(now - 30), "--to", t(now - 25)],
                         ["--from", t(now - 20), "--to", t(now - 25), "--scale", "-1"]):
                r = self.run([ipcamd, "replay", f"rtsp://127.0.0.1:{RTSP}/replay/syn", *args], 30)
                self.count("replay_sessions")
                if r is not None and r.returncode != 0:
                    self.fail(f"replay {args}: {r.stderr.strip()[:300]}")
            time.sleep(2)

    def http(self, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{HTTP}{path}", data=body, headers=headers or {})
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()

    def onvif(self):
        env = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
               '<s:Body>{}</s:Body></s:Envelope>')
        ops = [('/onvif/media_service', '<GetProfiles xmlns="http://www.onvif.org/ver10/media/wsdl"/>'),
               ('/onvif/media_service', '<GetStreamUri xmlns="http://www.onvif.org/ver10/media/wsdl">'
                '<StreamSetup><Stream xmlns="http://www.onvif.org/ver10/schema">RTP-Unicast</Stream>'
                '<Transport xmlns="http://www.onvif.org/ver10/schema"><Protocol>RTSP</Protocol></Transport>'
                '</StreamSetup><ProfileToken>syn</ProfileToken></GetStreamUri>')]
        while self.running():
            for path, op in ops:
                try:
                    st, _ = self.http(path, env.format(op).encode(), {"Content-Type": "application/soap+xml"})
                    self.count("soap_requests")
                    if st != 200:
                        self.fail(f"SOAP {path}: {st}")
                except OSError as e:
                    self.fail(f"SOAP {path}: {e}")
            time.sleep(0.5)

    def exports(self):
        while self.running():
            now = time.time()
            t = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
            cam = random.choice(CAMERAS)
            for path in (f"/api/recordings/{cam}/export.mp4?from={t(now - 25)}&to={t(now - 5)}",
                         f"/get?path={cam}&start={t(now - 25)}&duration=20&format=fmp4",
                         f"/list?path={cam}"):
                try:
                    st, body = self.http(path)
                    self.count("http_exports")
                    self.count("bytes_exported", len(body))
                except urllib.error.HTTPError as e:
                    if e.code != 404:  # 404: no footage yet in that range
                        self.fail(f"export {path}: {e.code}")
                except OSError as e:
                    self.fail(f"export {path}: {e}")
            time.sleep(3)

    def publisher(self):
        """ffmpeg publishing to `pub`, restarted whenever it ends."""
        while self.running():
            left = max(5, int(self.until - time.time()))
            self.run(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", MEDIA, "-t", str(left),
                      "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
                      f"rtsp://127.0.0.1:{RTSP}/pub"], left + 30)
            self.count("publisher_runs")


def proc(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def mean(xs):
    return sum(xs) / max(1, len(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS-soak.md"))
    ap.add_argument("--csv", default=os.path.join(ROOT, "bench", "soak.csv"))
    a = ap.parse_args()
    make_media()
    tmp = tempfile.mkdtemp(prefix="ipcamd-soak-")
    cfg = os.path.join(tmp, "ipcamd.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nrtsp_listen = "127.0.0.1:{RTSP}"\nhttp_listen = "127.0.0.1:{HTTP}"\n'
                f'data_dir = "{tmp}/data"\nsession_timeout_s = 10\n'
                f'[onvif]\ndiscovery = false\n[webrtc]\nudp_listen = "127.0.0.1:0"\n'
                f'[[camera]]\nname = "syn"\nwidth = 640\nheight = 360\n'
                f'[camera.backchannel]\noutputs = ["wav"]\n'
                f'[[camera]]\nname = "file"\nsource = "file"\npath = "{MEDIA}"\n'
                f'[[camera]]\nname = "pub"\nsource = "publish"\npublish_role = "anonymous"\npublish_override = true\n'
                f'[[camera]]\nname = "proxy"\nsource = "rtsp"\nurl = "rtsp://127.0.0.1:{RTSP}/syn"\n')
    log_path = os.path.join(tmp, "server.log")
    log = open(log_path, "w")
    server = subprocess.Popen([os.path.join(a.bin_dir, "ipcamd"), "serve", "--config", cfg, "--log", "info"],
                              stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", HTTP), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    time.sleep(2)
    s = Soak(a, tmp)
    workers = [threading.Thread(target=s.publisher, daemon=True)]
    for cam in CAMERAS:
        for tr in ("tcp", "udp"):
            workers.append(threading.Thread(target=s.readers, args=(cam, tr), daemon=True))
    workers += [threading.Thread(target=s.tunnel, args=("syn",), daemon=True),
                threading.Thread(target=s.churn, daemon=True),
                threading.Thread(target=s.churn, daemon=True),
                threading.Thread(target=s.talk, daemon=True),
                threading.Thread(target=s.replay, daemon=True),
                threading.Thread(target=s.onvif, daemon=True),
                threading.Thread(target=s.exports, daemon=True)]
    started = time.time()
    for w in workers:
        w.start()
    samples = []
    while time.time() < s.until:
        if server.poll() is not None:
            s.fail(f"the server exited with {server.returncode}")
            break
        samples.append((round(time.time() - started, 1), *proc(server.pid)))
        time.sleep(2)
    for w in workers:
        w.join(timeout=60)
    time.sleep(12)  # the session timeout (10 s) of sessions whose clients vanished
    _, stats = s.http("/api/stats")
    stats = json.loads(stats)
    rec_sections = {}
    for cam in CAMERAS:
        try:
            _, b = s.http(f"/api/recordings/{cam}")
            rec_sections[cam] = json.loads(b).get("sections", [])
        except OSError:
            rec_sections[cam] = []
    server.terminate()
    server.wait(timeout=30)
    log.close()

    checks = []
    after = [x for x in samples if x[0] >= a.minutes * 60 / 4]
    fifth = max(1, len(after) // 5)
    first, last = after[:fifth], after[-fifth:]
    rss0, rss1 = mean([x[1] for x in first]) / 1024, mean([x[1] for x in last]) / 1024
    fd0, fd1 = mean([x[2] for x in first]), mean([x[2] for x in last])
    th0, th1 = mean([x[3] for x in first]), mean([x[3] for x in last])
    checks.append(("RSS flat after warm-up", rss1 - rss0 <= max(16, rss0 * 0.2), f"{rss0:.1f} -> {rss1:.1f} MiB"))
    checks.append(("fds flat after warm-up", fd1 - fd0 <= 16, f"{fd0:.0f} -> {fd1:.0f}"))
    checks.append(("threads flat after warm-up", th1 - th0 <= 4, f"{th0:.0f} -> {th1:.0f}"))
    text = open(log_path, errors="replace").read()
    bad = [l for l in text.splitlines() if "panicked" in l or " ERROR " in l]
    checks.append(("no panic or ERROR in the log", not bad, f"{len(bad)} lines" + (f": {bad[0][:200]}" if bad else "")))
    checks.append(("clients saw no failure (gaps, errors)", not s.failures, f"{len(s.failures)}" + (f": {s.failures[0][:300]}" if s.failures else "")))
    for cam in ("syn", "file"):
        n = len(rec_sections.get(cam) or [])
        checks.append((f"recording of {cam}: one section (no gap)", n == 1, f"{n} sections"))
    # What stays: the proxy camera's own session and connection to `syn`, and the
    # connection of the /api/stats request.
    checks.append(("sessions and connections all closed", stats.get("sessions_open") == 1 and stats.get("connections_open", 0) <= 2,
                   f"sessions_open={stats.get('sessions_open')} connections_open={stats.get('connections_open')}"))
    made = s.counts.get("reader_sessions", 0) + s.counts.get("drop_sessions", 0) + s.counts.get("stall_sessions", 0)
    checks.append(("sessions_created counts every session made", stats.get("sessions_created", 0) >= made,
                   f"sessions_created={stats.get('sessions_created')} >= {made}"))
    gaps = max([int(k.get("max_frame_gap_ms_max", 0)) for _, _, k in s.reader_runs] or [0])
    ok = all(c[1] for c in checks)

    with open(a.csv, "w") as f:
        f.write("t_s,rss_kib,fds,threads\n")
        for x in samples:
            f.write(",".join(map(str, x)) + "\n")
    png = os.path.splitext(a.csv)[0] + ".png"
    plot = subprocess.run([os.path.join(ROOT, "bench", "soak_plot.sh"), a.csv, png],
                          capture_output=True, text=True)
    if plot.returncode != 0:
        print(f"soak: no plot: {plot.stderr.strip()}", file=sys.stderr)
    lines = [
        "# Soak with churn",
        "",
        f"`bench/soak.py --minutes {a.minutes:g}` on this machine (2 cores, the load generators on",
        "the same cores), release build, four recorded cameras (synthetic 640x360 with a",
        "backchannel, the 720p25 2 Mbit/s file, a published ffmpeg stream, a proxy of the",
        "synthetic camera). Samples in bench/soak.csv, plotted in bench/soak.png",
        "(`bench/soak_plot.sh`).",
        "",
        f"Result: **{'PASS' if ok else 'FAIL'}**",
        "",
        "| check | passed | figures |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {'yes' if p else 'NO'} | {d} |" for n, p, d in checks]
    lines += ["", "| served | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(s.counts.items())]
    lines += [f"| connections (server) | {stats.get('connections')} |",
              f"| sessions created (server) | {stats.get('sessions_created')} |",
              f"| largest frame gap seen by a well-behaved reader | {gaps} ms |"]
    if s.failures:
        lines += ["", "Failures (first ones):", ""] + [f"- {x[:400]}" for x in s.failures[:10]]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
