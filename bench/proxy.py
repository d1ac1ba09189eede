#!/usr/bin/env python3
"""What proxying a camera costs: one 720p25 2 Mbit/s camera to N TCP readers, served
directly by the camera (an ipcamd file camera, bench/media/720p25-2mbit-60s.mp4) and
through a second ipcamd that pulls it (`source = "rtsp"`, TCP), in the same minutes; and
what a published stream costs: a third ipcamd whose camera (`source = "publish"`) gets the
same file from `ffmpeg -re -stream_loop -1 -c copy -f rtsp` over TCP ("publish"; its
figure includes receiving the publisher).

  bench/proxy.py BIN_DIR [--readers 1,100,1000] [--rounds 2]

BIN_DIR holds release `ipcamd` and `ipcamd-bench`. For each reader count and round:
server CPU seconds per GB delivered (the serving process only: the camera for "file",
the proxy for "proxy"; the proxy's figure includes pulling the camera), PLAY -> first
byte p50, and readers that saw no loss. The reference, gst-rtsp-server proxying the same
camera (bench/gst_proxy.py, rtspsrc ! rtph264depay ! rtph264pay, shared media), is measured
in the same rounds ("gst-proxy"). Fixed ports 18600 (camera), 18610 (proxy), 18620 (publish), 18640 (gst).
Prints a markdown table (bench/RESULTS-proxy.md keeps the last one).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import bench, start  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIA = os.path.join(ROOT, "bench", "media", "720p25-2mbit-60s.mp4")


def make_media():
    if os.path.exists(MEDIA):
        return
    os.makedirs(os.path.dirname(MEDIA), exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
         "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2M", "-minrate", "2M",
         "-maxrate", "2M", "-bufsize", "2M", "-x264-params", "nal-hrd=cbr", "-g", "50",
         "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
         "-movflags", "+faststart", MEDIA + ".part.mp4"], check=True)
    os.rename(MEDIA + ".part.mp4", MEDIA)


def serve(bin_dir, tmp, port, camera):
    """bench/ab.py's server with `camera`, once its /live answers DESCRIBE (a proxy's
    camera only does once its upstream delivers)."""
    p = start(bin_dir, port, tmp, camera)
    if not serve_wait(port):
        p.kill()
        sys.exit(f"ipcamd on {port} did not serve /live within 30 s")
    return p


def serve_wait(port):
    """Whether rtsp://127.0.0.1:PORT/live answers DESCRIBE with 200 within 30 s."""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"DESCRIBE rtsp://127.0.0.1:{port}/live RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
                if s.recv(100).startswith(b"RTSP/1.0 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def fan_out(bench_bin, port, pid, n):
    r = bench(bench_bin, "readers", "--url", f"rtsp://127.0.0.1:{port}/live", "-n", n,
              "--duration", 10, "--ramp", 500, "--settle", 2, "--server-pid", pid)
    return r.get("server_cpu_s_per_gb"), r.get("first_byte_ms_p50"), r.get("clean_readers")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin_dir")
    ap.add_argument("--readers", default="1,100,1000")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    make_media()
    bench_bin = os.path.join(a.bin_dir, "ipcamd-bench")
    counts = [int(x) for x in a.readers.split(",")]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        camera = serve(a.bin_dir, tmp, 18600,
                       f'[[camera]]\nname = "live"\nsource = "file"\npath = "{MEDIA}"\nrecord = false\n')
        proxy = serve(a.bin_dir, tmp, 18610,
                      '[[camera]]\nname = "live"\nsource = "rtsp"\n'
                      'url = "rtsp://127.0.0.1:18600/live"\nrecord = false\n')
        published = start(a.bin_dir, 18620, tmp,
                          '[[camera]]\nname = "live"\nsource = "publish"\nrecord = false\n')
        publisher = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", MEDIA, "-c", "copy",
             "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://127.0.0.1:18620/live"],
            stdin=subprocess.DEVNULL)
        serve_wait(18620)
        gst = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "bench", "gst_proxy.py"),
                                "18640", "rtsp://127.0.0.1:18600/live"],
                               stdout=subprocess.PIPE, text=True)
        if not (gst.stdout and gst.stdout.readline().startswith("ready")):
            sys.exit("bench/gst_proxy.py did not start (gir1.2-gst-rtsp-server-1.0)")
        try:
            time.sleep(3)
            servers = (("file", 18600, camera.pid), ("proxy", 18610, proxy.pid),
                       ("publish", 18620, published.pid), ("gst-proxy", 18640, gst.pid))
            for r in range(a.rounds):
                for n in counts:
                    for name, port, pid in servers:
                        m = fan_out(bench_bin, port, pid, n)
                        print(f"round {r + 1} {name} {n} readers: cpu_s_per_gb={m[0]} "
                              f"first_byte_p50_ms={m[1]} clean={m[2]}", flush=True)
                        rows.setdefault((n, name), []).append(m)
                        time.sleep(1)
        finally:
            for p in (gst, publisher, published, proxy, camera):
                p.terminate()
                p.wait()
    med = lambda xs: statistics.median(x for x in xs if x is not None)  # noqa: E731
    print("\n| readers | file: CPU s/GB | proxy: CPU s/GB | publish: CPU s/GB | gst-proxy: CPU s/GB "
          "| proxy/file | publish/file | proxy/gst | first byte p50 ms file / proxy / publish / gst "
          "| clean readers file / proxy / publish / gst |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in counts:
        f, p, u, g = (rows[(n, k)] for k in ("file", "proxy", "publish", "gst-proxy"))
        cpu = lambda rs: ", ".join(f"{x[0]:g}" for x in rs if x[0] is not None)  # noqa: E731
        print(f"| {n} | {cpu(f)} | {cpu(p)} | {cpu(u)} | {cpu(g)} "
              f"| {med(x[0] for x in p) / med(x[0] for x in f):.2f} "
              f"| {med(x[0] for x in u) / med(x[0] for x in f):.2f} "
              f"| {med(x[0] for x in p) / med(x[0] for x in g):.2f} "
              f"| {med(x[1] for x in f):g} / {med(x[1] for x in p):g} / {med(x[1] for x in u):g} "
              f"/ {med(x[1] for x in g):g} "
              f"| {min(x[2] for x in f):g} / {min(x[2] for x in p):g} / {min(x[2] for x in u):g} "
              f"/ {min(x[2] for x in g):g} |")


if __name__ == "__main__":
    main()
