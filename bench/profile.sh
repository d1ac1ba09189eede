#!/usr/bin/env bash
# Where the fan-out's CPU goes (issue 16): N TCP readers (ipcamd-bench) on ipcamd and on
# gst-rtsp-server (bench/gst_server.py), same media (bench/media/720p25-2mbit-60s), one
# server at a time. Over a window in the steady state: system calls per delivered MB
# (`perf stat` on the syscall tracepoints of the server's process) and the server's top
# symbols (`perf record`, no call graphs). Syscall counts and symbol shares depend little
# on what else runs on the machine; CPU seconds do (use bench/run for those).
# Prints Markdown.
#
#   bench/profile.sh [readers (default 1000)] [window seconds (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-1000}
win=${2:-5}
command -v perf >/dev/null || { echo "profile.sh: needs perf (Debian linux-perf)" >&2; exit 1; }
cargo build --release -q -p ipcamd -p ipcamd-bench
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
mp4=bench/media/720p25-2mbit-60s.mp4
h264=bench/media/720p25-2mbit-60s.h264
cat > "$dir/ipcamd.toml" <<TOML
[server]
rtsp_listen = "127.0.0.1:0"
http_listen = "off"
data_dir = "$dir/data"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[[camera]]
name = "live"
source = "file"
path = "$PWD/$mp4"
record = false
TOML

# ramp 500/s, settle 2 s, then the window; the readers run a little longer than it.
ramp_s=$(( n / 500 + 3 ))
events=raw_syscalls:sys_enter,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
measure() { # NAME PID URL
  local name=$1 pid=$2 url=$3
  ./target/release/ipcamd-bench readers --url "$url" -n "$n" --duration $((win + 2)) \
    --ramp 500 --settle 2 --server-pid "$pid" > "$dir/$name.bench" &
  local bpid=$!
  sleep "$ramp_s"
  perf stat -x, -e "$events" -p "$pid" -o "$dir/$name.stat" -- sleep "$win" &
  perf record -q -F 999 -p "$pid" -o "$dir/$name.perf" -- sleep "$win" >/dev/null 2>&1
  wait $!
  wait "$bpid"
}

env -u RUST_LOG ./target/release/ipcamd serve --config "$dir/ipcamd.toml" \
  --log warn,ipcamd::bound=info 2>"$dir/ipcamd.log" &
ipid=$!; pids+=("$ipid")
iport=$(bound_port "$dir/ipcamd.log" rtsp "$ipid")
sleep 1
measure ipcamd "$ipid" "rtsp://127.0.0.1:$iport/live"
kill "$ipid"

/usr/bin/python3 -u bench/gst_server.py 0 "$h264" > "$dir/gst.log" 2>&1 &
gpid=$!; pids+=("$gpid")
for _ in $(seq 100); do grep -q "^ready PORT" "$dir/gst.log" 2>/dev/null && break; sleep 0.1; done
gport=$(awk '/^ready PORT/ {print $3}' "$dir/gst.log")
sleep 1
measure gst "$gpid" "rtsp://127.0.0.1:$gport/live"

echo "$n TCP readers, $win s window, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | delivered MB/s | syscalls per MB | writev | write | sendmsg | sendmmsg | sendto | epoll_wait | futex |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for s in ipcamd gst; do
  mbit=$(tr ' ' '\n' < "$dir/$s.bench" | awk -F= '$1=="mbit_per_s_total"{print $2}')
  awk -F, -v s="$s" -v mbit="$mbit" -v win="$win" '
    $3 ~ /sys_enter/ { c[$3] = $1 }
    END {
      mb = mbit / 8 * win
      printf "| %s | %.0f | %.1f |", s, mbit / 8, c["raw_syscalls:sys_enter"] / mb
      split("writev write sendmsg sendmmsg sendto epoll_wait futex", k, " ")
      for (i = 1; i <= 7; i++) printf " %.1f |", c["syscalls:sys_enter_" k[i]] / mb
      printf "\n"
    }' "$dir/$s.stat"
done
echo
echo "(each syscall column: calls per delivered MB)"
for s in ipcamd gst; do
  echo
  echo "Top symbols of $s (perf record -F 999, share of the server's samples):"
  echo
  echo '```'
  perf report -i "$dir/$s.perf" --no-children --sort dso,sym --stdio 2>"$dir/$s.report.err" \
    | grep -E '^ +[0-9.]+%' | awk 'NR <= 15' || { echo "(no samples: $(tail -2 "$dir/$s.report.err"))"; }
  echo '```'
done
