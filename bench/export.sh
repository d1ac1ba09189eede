#!/usr/bin/env bash
# MP4 export figures of ipcamd on this machine (server redesign: streaming export):
#
#  1. 24 hours of a synthetic camera (16x16 at 25 fps + G.711: the frame count of a real
#     camera, 2.16 M video frames and 4.32 M audio units, with tiny frames), imported with
#     `ipcamd import --synthetic`; the server exports it over HTTP in one GET: time to the
#     response head (= planning) and to the first body byte, throughput, server RSS before
#     and its peak during the download (sampled from /proc/PID/status every 20 ms);
#  2. the same range without HTTP (examples/export_bench): planning time, bytes of
#     in-memory table per unit and per video sample, write speed;
#  3. 1 hour of 720p25 H.264 at 2 Mbit/s (a 60 s ffmpeg file imported 60 times, ~900 MB):
#     throughput with real frame sizes.
#
# Release build. Prints a Markdown table.
#
#   bench/export.sh [hours of synthetic footage (default 24)]
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-24}
cargo build --release -q -p ipcamd
cargo build --release -q -p ipcamd-store --example export_bench
dir=$(mktemp -d)
rtsp=$((20000 + RANDOM % 20000))
http=$((rtsp + 1))
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/ipcamd.toml" <<TOML
[server]
rtsp_listen = "127.0.0.1:$rtsp"
http_listen = "127.0.0.1:$http"
data_dir = "$dir/data"

[[camera]]
name = "day"
width = 16
height = 16
fps = 25
bitrate_kbps = 64
record = false
TOML
bin=./target/release/ipcamd
t0=$(date +%s.%N)
$bin import --synthetic --camera day --duration "${hours}h" --start 2026-01-01T00:00:00Z \
  --config "$dir/ipcamd.toml" 2>&1 | tr '\r' '\n' | tail -1
t1=$(date +%s.%N)
import_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
to=$(python3 -c "import datetime as d; print((d.datetime(2026,1,1)+d.timedelta(hours=$hours)).strftime('%Y-%m-%dT%H:%M:%SZ'))")

# 1. Over HTTP.
$bin serve --config "$dir/ipcamd.toml" --log warn &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$http) 2>/dev/null && break; sleep 0.1; done
sleep 0.5
http_fig=$(python3 - "$pid" "$http" "/api/recordings/day/export.mp4?from=2026-01-01T00:00:00Z&to=$to" <<'PY'
import socket, sys, threading, time
pid, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
    return 0
before = rss(); peak = [before]; done = [False]
def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.02)
th = threading.Thread(target=sample); th.start()
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
buf = b""; head_t = None; first_t = None; n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    if head_t is None:
        head_t = time.time() - t0
        buf += d
        if b"\r\n\r\n" in buf:
            head, body = buf.split(b"\r\n\r\n", 1)
            length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
            n += len(body)
            if body: first_t = time.time() - t0
        else:
            head_t = None
        continue
    if first_t is None: first_t = time.time() - t0
    n += len(d)
total = time.time() - t0
done[0] = True; th.join()
assert n == length, (n, length)
mib = 1048576
print(f"{length} {head_t*1e3:.0f} {first_t*1e3:.0f} {total:.2f} {length/total/1e6:.0f} {before/mib:.1f} {peak[0]/mib:.1f} {(peak[0]-before)/mib:.1f}")
PY
)
kill $pid; wait $pid 2>/dev/null || true; pid=
read -r len head_ms first_ms total_s mbs rss0 rss_peak rss_growth <<<"$http_fig"

# 2. Without HTTP.
bench=$(./target/release/examples/export_bench "$dir/data/recordings" day 2026-01-01T00:00:00Z "$to")
plan_s=$(sed -n 's/^plan: \([0-9.]*\) s.*/\1/p' <<<"$bench")
units=$(sed -n 's/^plan: [0-9.]* s for \([0-9]*\) units (\([0-9]*\) video).*/\1 \2/p' <<<"$bench")
table=$(sed -n 's/^in-memory tables: \([0-9]*\) bytes = \([0-9.]*\) bytes per unit, \([0-9.]*\) per video.*/\1 \2 \3/p' <<<"$bench")
write_mbs=$(sed -n 's/^write: .*(\([0-9]*\) MB\/s).*/\1/p' <<<"$bench")
read -r table_bytes per_unit per_video <<<"$table"
read -r n_units n_video <<<"$units"

# 3. 1 hour at 2 Mbit/s.
media=/tmp/ipcamd-bench-720p-2M.mp4
if [ ! -s "$media" ]; then
  ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=25 -t 60 -c:v libx264 -preset veryfast \
    -b:v 2M -maxrate 2M -bufsize 2M -g 50 -pix_fmt yuv420p -y "$media"
fi
for m in $(seq 0 59); do
  $bin import "$media" --camera hall --start "$(printf '2026-02-01T00:%02d:00Z' "$m")" \
    --config "$dir/ipcamd.toml" 2>/dev/null
done
hall=$(./target/release/examples/export_bench "$dir/data/recordings" hall 2026-02-01T00:00:00Z 2026-02-01T01:00:00Z)
hall_mbs=$(sed -n 's/^write: .*(\([0-9]*\) MB\/s).*/\1/p' <<<"$hall")
hall_len=$(sed -n 's/.*file \([0-9]*\) bytes$/\1/p' <<<"$hall")
$bin serve --config "$dir/ipcamd.toml" --log warn &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$http) 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s.%N)
curl -s -o /dev/null "http://127.0.0.1:$http/api/recordings/hall/export.mp4?from=2026-02-01T00:00:00Z&to=2026-02-01T01:00:00Z"
t1=$(date +%s.%N)
hall_http=$(awk -v a="$t0" -v b="$t1" -v n="$hall_len" 'BEGIN { printf "%.0f", n / (b - a) / 1e6 }')

echo "| figure | value |"
echo "|---|---|"
echo "| import of ${hours} h synthetic (16x16 25 fps + G.711) | $import_s s |"
echo "| ${hours} h export over HTTP: file | $len bytes, $n_units units ($n_video video frames) |"
echo "| time to response head (planning) / first body byte | $head_ms ms / $first_ms ms |"
echo "| throughput over HTTP (loopback, one GET) | $mbs MB/s ($total_s s) |"
echo "| server RSS before / peak during / growth | $rss0 / $rss_peak / +$rss_growth MiB |"
echo "| planning without HTTP | $plan_s s |"
echo "| in-memory table | $table_bytes bytes: $per_unit bytes per unit, $per_video per video sample |"
echo "| write speed without HTTP (to /dev/null) | $write_mbs MB/s |"
echo "| 1 h of 720p 2 Mbit/s ($hall_len bytes): without HTTP / over HTTP (curl) | $hall_mbs / $hall_http MB/s |"
