#!/usr/bin/env bash
# ONVIF replay figures of ipcamd on this machine (issue #5): Rate-Control: no throughput
# over TCP on loopback next to the loopback TCP limit measured by the same reader, the
# time from PLAY to the first byte, and server CPU for N concurrent replays at 1x.
# Media: a 720p25 H.264 file at 2 Mbit/s made once with ffmpeg (libx264), imported 10
# times (10 minutes of recording, about 150 MB). Prints a Markdown table.
#
#   bench/replay.sh [concurrent replays (default 20)] [seconds (default 20)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-20}
secs=${2:-20}
cargo build --release -q -p ipcamd
dir=$(mktemp -d)
trap 'kill $pid $cpid 2>/dev/null; rm -rf "$dir"' EXIT
pid=; cpid=
media=/tmp/ipcamd-bench-720p-2M.mp4
if [ ! -s "$media" ]; then
  ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=25 -t 60 -c:v libx264 -preset veryfast \
    -b:v 2M -maxrate 2M -bufsize 2M -g 50 -pix_fmt yuv420p -y "$media"
fi
cat > "$dir/ipcamd.toml" <<TOML
[server]
rtsp_listen = "127.0.0.1:0"
http_listen = "off"
data_dir = "$dir/data"
TOML
for m in 0 1 2 3 4 5 6 7 8 9; do
  ./target/release/ipcamd import "$media" --camera hall --start "2026-01-01T00:0${m}:00Z" \
    --config "$dir/ipcamd.toml" 2>/dev/null
done
env -u RUST_LOG ./target/release/ipcamd serve --config "$dir/ipcamd.toml" --log warn,ipcamd::bound=info \
  2>"$dir/ipcamd.log" &
pid=$!
port=$(bound_port "$dir/ipcamd.log" rtsp $pid)
url="rtsp://127.0.0.1:$port/replay/hall"
reader() { /usr/bin/python3 bench/replay_reader.py "$@"; }
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], ${3:-1}))" "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# 1. Rate-Control: no, whole recording, one reader.
t0=$(cpu_ticks)
r=$(reader "$url" 60 "clock=20260101T000000Z-" no)
t1=$(cpu_ticks)
cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
# 2. The loopback limit with the same read loop: a plain sender of 1 MB writes.
# It listens on a port of the system's choice and writes the number into $dir/cport.
python3 -c "
import os, socket, sys; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
with open(sys.argv[1] + '.part', 'w') as f: f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + '.part', sys.argv[1])
c,_=s.accept(); b=b'x'*(1<<20)
try:
    while True: c.sendall(b)
except OSError: pass" "$dir/cport" &
cpid=$!
for _ in $(seq 100); do [ -s "$dir/cport" ] && break; sleep 0.1; done
cport=$(cat "$dir/cport")
copy=$(reader "127.0.0.1:$cport" 5 - - copy)
kill $cpid 2>/dev/null || true
# 3. PLAY to first byte at a point in the middle (forward, Rate-Control: no), 10 times.
fb=()
for i in 1 2 3 4 5 6 7 8 9 10; do
  fb+=("$(field "$(reader "$url" 0.2 "clock=20260101T00050${i: -1}Z-" no)" first_byte_ms 2)")
done
# 4. N concurrent replays at 1x (Rate-Control: yes) for $secs seconds: server CPU.
for i in $(seq "$n"); do
  reader "$url" "$secs" "clock=20260101T0000$(printf %02d $((i % 50)))Z-" yes > "$dir/r$i.json" &
done
sleep 3
c0=$(cpu_ticks); sleep $((secs - 6)); c1=$(cpu_ticks)
wait_s=$((secs - 6))
cpu_n=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$wait_s" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
rates=$(cat "$dir"/r*.json | python3 -c "
import json,sys; v=[json.loads(l) for l in sys.stdin if l.strip()]
print(len(v), round(sum(x['mb_s'] for x in v)*8, 1), round(min(x['units_s'] for x in v), 1))")

echo "| figure | value |"
echo "|---|---|"
echo "| Rate-Control: no, 10 min of 720p 2 Mbit/s + no audio, TCP loopback | $(field "$r" mb_s) MB/s, $(field "$r" units_s 0) frames/s ($(field "$r" units 0) frames in $(field "$r" seconds 2) s; T: $(field "$r" terminal 0)) |"
echo "| server CPU for that replay | $cpu_s s |"
echo "| loopback TCP limit, same reader | $(field "$copy" mb_s) MB/s |"
echo "| PLAY to first byte, middle of the recording (10 PLAYs) | $(printf '%s ' "${fb[@]}")ms |"
echo "| $n concurrent replays at 1x (readers, Mbit/s in total, min frames/s per reader) | $rates |"
echo "| server CPU for them | $cpu_n % of one core |"
