#!/usr/bin/env bash
# Talk relay latency: `ipcamd talk` sends 10 s of PCMU over UDP to a proxying ipcamd
# (port 18710, relay over UDP), which relays it to the camera's backchannel (an ipcamd
# synthetic camera, port 18700, WAV output). tshark on loopback stamps the talker's RTP
# packets arriving at the proxy (UDP 18760) and the relayed ones arriving at the camera
# (UDP 18750); the k-th relayed packet is compared with the k-th talker packet (both 20 ms
# of audio). Prints packets in/out and the delay p50/p99/max.
#   bench/relay_latency.sh [BIN_DIR=target/release]   (needs tshark; run as root or in
#   the wireshark group)
set -euo pipefail
bin="$(cd "${1:-target/release}" && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/a.toml" <<EOT
[server]
rtsp_listen = "127.0.0.1:18700"
http_listen = "127.0.0.1:18701"
rtp_port = 18750
data_dir = "$dir/a"
[onvif]
discovery = false
[[camera]]
name = "cam1"
width = 320
height = 180
record = false
EOT
cat > "$dir/b.toml" <<EOT
[server]
rtsp_listen = "127.0.0.1:18710"
http_listen = "127.0.0.1:18711"
rtp_port = 18760
data_dir = "$dir/b"
[onvif]
discovery = false
[[camera]]
name = "door"
source = "rtsp"
url = "rtsp://127.0.0.1:18700/cam1"
transport = "udp"
record = false
EOT
"$bin/ipcamd" serve --config "$dir/a.toml" --log warn &
sleep 1
"$bin/ipcamd" serve --config "$dir/b.toml" --log warn &
sleep 3
timeout 20 tshark -i lo -f "udp dst port 18760 or udp dst port 18750" -T fields \
  -e frame.time_epoch -e udp.dstport -e udp.length > "$dir/cap.txt" 2>/dev/null &
sleep 2
"$bin/ipcamd" talk rtsp://127.0.0.1:18710/door --transport udp --duration 10 >/dev/null 2>&1
sleep 3
pkill -f "tshark -i lo -f udp dst port 18760" || true
sleep 1
python3 - "$dir/cap.txt" <<'EOT'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]) if l.strip()]
inp = [float(t) for t, p, n in rows if p == '18760' and int(n) > 100]  # RTP, not RTCP
out = [float(t) for t, p, n in rows if p == '18750' and int(n) > 100]
d = sorted((o - i) * 1000 for i, o in zip(inp, out))
print(f"packets_in={len(inp)} packets_out={len(out)} relay_ms_p50={statistics.median(d):.1f} "
      f"relay_ms_p99={d[int(len(d) * 0.99)]:.1f} relay_ms_max={d[-1]:.1f}")
EOT
