#!/usr/bin/env python3
"""A/B comparison of two ipcamd builds on the same machine in the same minutes.

  bench/ab.py OLD_BIN_DIR NEW_BIN_DIR [--rounds 2] [--readers 1000]

Each BIN_DIR holds a release `ipcamd` (the bench's load generator `ipcamd-bench` is taken
from NEW_BIN_DIR for both, so only the server differs). The servers serve the same file
camera as bench/run (bench/media/720p25-2mbit-60s.mp4, made by bench/run if missing) and
are measured alternately, A B A B, so that slow drift of the machine hits both:

  - fan-out: N TCP readers for 10 s: server CPU s per GB delivered, PLAY -> first byte
    p50, readers clean;
  - session setup: OPTIONS..PLAY..TEARDOWN loops, 64 at a time for 5 s, next to one
    playing reader: sessions/s and server CPU ms per session.

Used for the server redesign's before/after figures (bench/RESULTS-redesign.md). The
servers are told their port (RTSP 127.0.0.1:18554 and 18556), because an old build may
not print its bound addresses; nothing else may use those ports meanwhile.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIA = os.path.join(ROOT, "bench", "media", "720p25-2mbit-60s.mp4")


def kv(text):
    out = {}
    for m in re.finditer(r"(\w+)=(-?[0-9.]+)", text):
        try:
            out[m.group(1)] = float(m.group(2))
        except ValueError:
            pass
    return out


def start(bin_dir, port, tmp, camera=None):
    """`ipcamd serve` on 127.0.0.1:PORT with `camera` (a [[camera]] table named "live";
    default the file camera), once it answers OPTIONS."""
    camera = camera or f'[[camera]]\nname = "live"\nsource = "file"\npath = "{MEDIA}"\nrecord = false\n'
    cfg = os.path.join(tmp, f"ab-{port}.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nrtsp_listen = "127.0.0.1:{port}"\nhttp_listen = "off"\n'
                f'rtp_port = {port + 1000}\ndata_dir = "{tmp}/data-{port}"\n\n'
                f'[limits]\nmax_connections = 20000\nmax_connections_per_ip = 20000\n\n'
                f'[onvif]\ndiscovery = false\n\n{camera}')
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    p = subprocess.Popen([os.path.join(bin_dir, "ipcamd"), "serve", "--config", cfg, "--log", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 30
    import socket
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"OPTIONS rtsp://127.0.0.1:{port}/live RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
                if s.recv(100).startswith(b"RTSP/1.0 200"):
                    return p
        except OSError:
            time.sleep(0.2)
    p.kill()
    sys.exit(f"{bin_dir}/ipcamd did not answer on {port}")


def bench(bench_bin, *args):
    r = subprocess.run([bench_bin, *map(str, args)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"ipcamd-bench {' '.join(map(str, args))}: {r.stderr.strip()}")
    return kv(r.stdout)


def measure(bin_dir, bench_bin, port, tmp, readers):
    p = start(bin_dir, port, tmp)
    url = f"rtsp://127.0.0.1:{port}/live"
    try:
        time.sleep(2)
        fan = bench(bench_bin, "readers", "--url", url, "-n", readers, "--duration", 10,
                    "--ramp", 500, "--settle", 2, "--server-pid", p.pid)
        keep = subprocess.Popen([bench_bin, "readers", "--url", url, "-n", "1", "--duration", "15",
                                 "--settle", "0"], stdout=subprocess.DEVNULL)
        time.sleep(2)
        setup = bench(bench_bin, "setup", "--url", url, "--duration", 5, "--concurrency", 64,
                      "--server-pid", p.pid)
        keep.kill()
        keep.wait()
    finally:
        p.terminate()
        p.wait()
    return {
        "cpu_s_per_gb": fan.get("server_cpu_s_per_gb"),
        "first_byte_p50_ms": fan.get("first_byte_ms_p50"),
        "clean_readers": fan.get("clean_readers"),
        "sessions_per_s": setup.get("sessions_per_s"),
        "cpu_ms_per_session": setup.get("server_cpu_ms_per_session"),
        "setup_first_media_p50_ms": setup.get("first_media_ms_p50"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--readers", type=int, default=1000)
    a = ap.parse_args()
    if not os.path.exists(MEDIA):
        sys.exit(f"{MEDIA} is missing: run bench/run once (it makes it with ffmpeg)")
    bench_bin = os.path.join(a.new, "ipcamd-bench")
    results = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for name, d, port in (("old", a.old, 18554), ("new", a.new, 18556)):
                m = measure(d, bench_bin, port, tmp, a.readers)
                print(f"round {r + 1} {name}: {m}", flush=True)
                results[name].append(m)
                time.sleep(2)
    keys = ["cpu_s_per_gb", "first_byte_p50_ms", "clean_readers", "sessions_per_s",
            "cpu_ms_per_session", "setup_first_media_p50_ms"]
    print(f"\n| figure ({a.readers} readers for fan-out) | old (each round) | new (each round) | new/old (medians) |")
    print("|---|---|---|---|")
    for k in keys:
        o = [m[k] for m in results["old"] if m[k] is not None]
        n = [m[k] for m in results["new"] if m[k] is not None]
        ratio = statistics.median(n) / statistics.median(o) if o and n and statistics.median(o) else float("nan")
        print(f"| {k} | {', '.join(f'{x:g}' for x in o)} | {', '.join(f'{x:g}' for x in n)} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
