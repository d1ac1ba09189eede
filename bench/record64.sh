#!/usr/bin/env bash
# Sustained recording of N cameras (default 64) at 2 Mbit/s: server CPU, write
# amplification (bytes the process wrote to disk / media bytes stored) and index bytes
# per frame. The cameras are file sources looping one 2 Mbit/s 720p25 H.264 file made
# once with ffmpeg, so the encoder is not in the figure.
#
#   bench/record64.sh [cameras (64)] [seconds (30)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-64}
secs=${2:-30}
cargo build --release -q -p ipcamd
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=25 -t 20 -c:v libx264 -b:v 2M -maxrate 2M \
  -bufsize 1M -g 50 -bf 0 -pix_fmt yuv420p "$dir/2mbit.mp4"
{
  printf '[server]\nrtsp_listen = "127.0.0.1:0"\nhttp_listen = "127.0.0.1:0"\ndata_dir = "%s/data"\n' \
    "$dir"
  for i in $(seq 1 "$n"); do
    printf '[[camera]]\nname = "c%s"\nsource = "file"\npath = "%s/2mbit.mp4"\n[camera.backchannel]\nenabled = false\n' \
      "$i" "$dir"
  done
} > "$dir/ipcamd.toml"
env -u RUST_LOG ./target/release/ipcamd serve --config "$dir/ipcamd.toml" --log warn,ipcamd::bound=info \
  2>"$dir/log" &
pid=$!
http=$(bound_port "$dir/log" http $pid)
sleep 5
hz=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); w0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
sleep "$secs"
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); w1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
frames=$(curl -s "http://127.0.0.1:$http/api/recordings" | grep -o '"frames": [0-9]*' | awk '{s += $2} END {print s}')
index=$(du -cb "$dir"/data/recordings/index.sqlite* | tail -1 | cut -f1)
media=$(du -sb --exclude='*.sqlite*' "$dir/data/recordings" | cut -f1)
awk -v n="$n" -v s="$secs" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" \
    -v media="$media" -v idx="$index" -v frames="$frames" 'BEGIN {
  printf "| cameras | seconds | server CPU (%% of one core) | media MB/s | disk write MB/s | write amplification | index bytes/frame |\n|---|---|---|---|---|---|---|\n"
  mbps = media / 1e6 / (s + 5)
  printf "| %d | %d | %.1f | %.2f | %.2f | %.2f | %.1f |\n", n, s, (t1 - t0) * 100 / hz / s, mbps, (w1 - w0) / 1e6 / s, ((w1 - w0) / s) / (media / (s + 5)), idx / frames
}'
grep -iE "error|cannot keep up" "$dir/log" | head -5 || true
