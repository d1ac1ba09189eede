#!/usr/bin/env bash
# ONVIF figures of ipcamd on this machine: SOAP requests per second for Media
# GetProfiles and GetStreamUri (wrk, keep-alive POSTs, 4 connections, 2 threads), and the
# time from a WS-Discovery Probe to its ProbeMatches (unicast on loopback, 200 probes).
# Prints a Markdown table.
#
#   bench/onvif.sh [seconds per wrk run (default 10)]
# Needs: wrk (apt-get install wrk), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p ipcamd
# RTSP and HTTP on port 0 (read back from the log). The WS-Discovery port is not in that
# line, so it is drawn at random: the server binds it with address and port reuse, as
# WS-Discovery ports are shared on a host, so a collision cannot fail the start.
disc=$((20000 + RANDOM % 20000))
dir=$(mktemp -d)
cat > "$dir/ipcamd.toml" <<TOML
[server]
rtsp_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
data_dir = "$dir/data"
[onvif]
discovery_port = $disc
[[camera]]
name = "cam1"
record = false
TOML
env -u RUST_LOG "${CARGO_TARGET_DIR:-target}/release/ipcamd" serve --config "$dir/ipcamd.toml" \
  --log warn,ipcamd::bound=info 2>"$dir/ipcamd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
http=$(bound_port "$dir/ipcamd.log" http $pid)
sleep 2

post_lua() { # $1 = SOAP body
  cat <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/soap+xml; charset=utf-8"
wrk.body = [[$1]]
LUA
}
env='<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>'
end='</s:Body></s:Envelope>'
post_lua "${env}<GetProfiles xmlns=\"http://www.onvif.org/ver10/media/wsdl\"/>${end}" > "$dir/profiles.lua"
post_lua "${env}<GetStreamUri xmlns=\"http://www.onvif.org/ver10/media/wsdl\"><StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><ProfileToken>cam1</ProfileToken></GetStreamUri>${end}" > "$dir/uri.lua"

rps() { # $1 = lua file; echoes "requests/s | p50 | p99"
  wrk -t2 -c4 -d"${secs}s" --latency -s "$1" "http://127.0.0.1:$http/onvif/media_service" > "$dir/wrk.txt"
  local r p50 p99 non2xx
  r=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$dir/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$dir/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$dir/wrk.txt")
  echo "$r | $p50 | $p99 | ${non2xx:-0}"
}

probe_ms=$(python3 - "$disc" <<'PY'
import socket, sys, time, uuid
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
lat = []
for i in range(200):
    mid = f"uuid:{uuid.uuid4()}"
    msg = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
           'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
           f'<a:MessageID>{mid}</a:MessageID><a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body>'
           '<Probe xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><Types xmlns:dn="http://www.onvif.org/ver10/network/wsdl">dn:NetworkVideoTransmitter</Types></Probe></s:Body></s:Envelope>')
    t = time.perf_counter()
    s.sendto(msg.encode(), ("127.0.0.1", port))
    while True:
        d, _ = s.recvfrom(65536)
        if mid.encode() in d:
            break
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(f"{lat[len(lat)//2]:.3f} | {lat[int(len(lat)*0.99)]:.3f} | {lat[-1]:.3f}")
PY
)

echo "| operation | requests/s | latency p50 | latency p99 | non-2xx |"
echo "|---|---|---|---|---|"
echo "| Media GetProfiles | $(rps "$dir/profiles.lua") |"
echo "| Media GetStreamUri | $(rps "$dir/uri.lua") |"
echo
echo "| WS-Discovery Probe -> ProbeMatches (ms) | p50 | p99 | max |"
echo "|---|---|---|---|"
echo "| unicast, loopback, 200 probes | $probe_ms |"
