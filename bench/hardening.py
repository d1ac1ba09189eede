#!/usr/bin/python3
"""Hardening figures of ipcamd (issue #6): memory per idle connection (RSS delta / N) and
the number of idle connections held while one well-behaved TCP reader keeps full frame
rate. Prints a Markdown table; see bench/RESULTS-hardening.md.

    bench/hardening.py [IPCAMD_BINARY] [connection counts, default 500,1000,2000,4000,8000]

Idle connections are plain TCP connections to the RTSP port that send nothing (the
`[limits]` are raised for the run). Full frame rate: RTP packets with the marker bit on
the video channel counted over 5 s, against the camera's 25 fps.
"""
import os, resource, socket, struct, subprocess, sys, tempfile, threading, time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/ipcamd"
counts = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "500,1000,2000,4000,8000").split(",")]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

d = tempfile.mkdtemp()
cfg = os.path.join(d, "ipcamd.toml")
# Port 0: the server binds a free port and names it in its log (README "Bound addresses").
with open(cfg, "w") as f:
    f.write(f"""[server]
rtsp_listen = "127.0.0.1:0"
http_listen = "off"
data_dir = "{d}/data"
[limits]
max_connections = 100000
max_connections_per_ip = 100000
idle_timeout_s = 3600
[[camera]]
name = "cam1"
record = false
""")
log_path = os.path.join(d, "ipcamd.log")
env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
srv = subprocess.Popen([binary, "serve", "--config", cfg, "--log", "warn,ipcamd::bound=info"],
                       stderr=open(log_path, "w"), env=env)
try:
    port = None
    for _ in range(300):
        with open(log_path, errors="replace") as f:
            for line in f:
                if " ipcamd::bound: " in line and line.endswith("\n"):
                    fields = dict(kv.split("=", 1) for kv in line.split(" ipcamd::bound: ", 1)[1].split())
                    port = int(fields["rtsp"].rsplit(":", 1)[1])
        if port is not None or srv.poll() is not None:
            break
        time.sleep(0.1)
    if port is None:
        sys.exit(f"ipcamd did not log its bound addresses; log:\n{open(log_path).read()}")

    def rss_kb():
        with open(f"/proc/{srv.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # The well-behaved reader.
    markers = [0]
    stop = [False]
    w = socket.create_connection(("127.0.0.1", port))
    url = f"rtsp://127.0.0.1:{port}/cam1"
    w.sendall(f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += w.recv(4096)
    head = buf.split(b"\r\n\r\n")[0].decode()
    sess = [l.split(":", 1)[1].strip().split(";")[0] for l in head.split("\r\n") if l.lower().startswith("session:")][0]
    w.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {sess}\r\n\r\n".encode())

    def reader():
        b = b""
        while not stop[0]:
            try:
                chunk = w.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            b += chunk
            while True:
                if b[:1] == b"$":
                    if len(b) < 4: break
                    n = struct.unpack(">H", b[2:4])[0]
                    if len(b) < 4 + n: break
                    if b[1] == 0 and n > 2 and b[5] & 0x80:
                        markers[0] += 1
                    b = b[4 + n:]
                else:
                    i = b.find(b"\r\n\r\n")
                    if i < 0: break
                    b = b[i + 4:]
    t = threading.Thread(target=reader, daemon=True); t.start()
    time.sleep(2)

    def fps(secs=5):
        m0 = markers[0]; time.sleep(secs); return (markers[0] - m0) / secs

    base_rss = rss_kb()
    print(f"| idle connections | server RSS (MiB) | RSS per connection (KiB) | reader fps (of 25) |")
    print("|---|---|---|---|")
    print(f"| 0 | {base_rss/1024:.1f} | - | {fps():.1f} |")
    held = []
    for n in counts:
        while len(held) < n:
            try:
                held.append(socket.create_connection(("127.0.0.1", port)))
            except OSError as e:
                print(f"cannot open connection {len(held)+1}: {e}", file=sys.stderr)
                break
        time.sleep(1)
        r = rss_kb()
        per = (r - base_rss) / max(1, len(held))
        print(f"| {len(held)} | {r/1024:.1f} | {per:.1f} | {fps():.1f} |", flush=True)
        if len(held) < n:
            break
    stop[0] = True
finally:
    srv.terminate(); srv.wait()
