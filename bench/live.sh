#!/usr/bin/env bash
# Live-streaming figures of ipcamd on this machine: server CPU with the synthetic encoder
# alone and with 1, 10, 100 TCP readers of cam1 (640x360 25 fps H.264 at 1 Mbit/s + PCMU),
# and the time from PLAY to the first media byte. Prints a Markdown table.
#
#   bench/live.sh [seconds-per-step (default 20)] [reader counts (default "1 10 100")]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-20}
counts=${2:-"1 10 100"}
cargo build --release -q -p ipcamd -p ipcamd-bench
dir=$(mktemp -d)
cat > "$dir/ipcamd.toml" <<TOML
[server]
rtsp_listen = "127.0.0.1:0"
http_listen = "off"
TOML
env -u RUST_LOG ./target/release/ipcamd serve --config "$dir/ipcamd.toml" --log warn,ipcamd::bound=info \
  2>"$dir/ipcamd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=$(bound_port "$dir/ipcamd.log" rtsp $pid)
sleep 2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
measure() { # $1 = seconds; echoes server CPU % of one core over that time
  local t0 t1
  t0=$(cpu_ticks); sleep "$1"; t1=$(cpu_ticks)
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$1" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }'
}

echo "| readers | server CPU (% of one core) | Mbit/s delivered | seq gaps | PLAY->first byte p50 / max (ms) | bench CPU s |"
echo "|---|---|---|---|---|---|"
echo "| 0 (encoder alone) | $(measure "$secs") | 0 | - | - | - |"
for n in $counts; do
  out=$(mktemp)
  ./target/release/ipcamd-bench readers --url "rtsp://127.0.0.1:$port/cam1" -n "$n" --duration $((secs + 4)) --ramp 200 > "$out" &
  bpid=$!
  sleep 3 # ramp-up and GOP burst
  cpu=$(measure "$secs")
  wait $bpid
  line=$(head -1 "$out")
  get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
  echo "| $n | $cpu | $(get mbit_per_s_total) | $(get seq_gaps) | $(get first_byte_ms_p50) / $(get first_byte_ms_max) | $(get bench_cpu_s) |"
  rm -f "$out"
done
