#!/usr/bin/env bash
# Runs every test of ipcamd on a fresh Debian machine: installs the real clients the
# integration tests talk to (ffmpeg/ffprobe, GStreamer with rtspsrc, Python GI, tshark,
# onvif-util, xmllint, iproute2, gcc for bench/reader.c, libfaketime for the clock-step
# test, and the onvif-zeep client in target/onvif-venv),
# then runs the whole workspace's tests. Tests that need a client FAIL when it is missing;
# none is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-time build: incremental caches would only take disk (gigabytes) on a fresh machine.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# How much disk the build takes and what is left, printed after each step that builds.
disk() { echo "== disk: target $(du -sh target 2>/dev/null | cut -f1), free $(df -h --output=avail . | tail -1 | tr -d ' ')"; }
disk

packages=(ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  curl libasound2-dev gnuplot-nox onvif-tools libxml2-utils iproute2 python3-venv
  chromium chromium-driver gcc libc6-dev faketime)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The tests' Python clients, in a venv: onvif-zeep (ships the ONVIF WSDLs) for the ONVIF
# tests, prometheus-client (its text-format parser) for the `/metrics` test, Selenium
# (drives Debian's Chromium through chromedriver) and aiortc (a WebRTC stack) for the web
# console and WHEP tests.
if [ ! -x target/onvif-venv/bin/python ] \
  || ! target/onvif-venv/bin/python -c "import onvif, prometheus_client, selenium, aiortc" 2>/dev/null; then
  echo "== creating target/onvif-venv with onvif-zeep, prometheus-client, selenium and aiortc"
  python3 -m venv target/onvif-venv
  target/onvif-venv/bin/pip install -q onvif-zeep prometheus-client selenium aiortc
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== import graph: no files of a crate import each other in a circle"
python3 scripts/import-graph.py

# One build of everything: the tests, bench/run --smoke and the soak all take their
# binaries from target/debug. (A `cargo build -p ipcamd -p ipcamd-bench` would unify other
# dependency features than the tests' and compile the workspace a second time.)
echo "== cargo build --workspace --all-targets (with the alsa feature: the ALSA output is tested through ALSA's file plugin)"
cargo build --workspace --all-targets --features ipcamd/alsa
disk

# The fuzz smoke run (its own build, with other compiler flags, then 18 targets x 12 s)
# runs beside the tests in the idle scheduling class: the tests mostly wait on clients and
# real-time media, and the fuzzing takes only the CPU they leave. Its log is printed after
# the tests; a crash fails this script there.
fuzz_log=target/fuzz-smoke.log
echo "== fuzz smoke run, in the background (SCHED_IDLE, nice 19), log in $fuzz_log"
setsid -w chrt --idle 0 nice -n 19 ./scripts/fuzz-smoke.sh >"$fuzz_log" 2>&1 &
fuzz_pid=$!
trap 'kill -- -"$fuzz_pid" 2>/dev/null || true' EXIT

echo "== cargo test"
cargo test --workspace --features ipcamd/alsa
disk

echo "== fuzz smoke run: waiting for it"
if ! wait "$fuzz_pid"; then
  cat "$fuzz_log" >&2
  echo "fuzz smoke run FAILED (log above, $fuzz_log)" >&2
  exit 1
fi
trap - EXIT
grep -E '^(== fuzz|stat::)' "$fuzz_log" || true
disk

echo "== bench/run --smoke (benchmarks at a tiny size: must still produce the table)"
/usr/bin/python3 bench/run --smoke --bin-dir target/debug
disk

echo "== bench/soak.py --minutes 2 (clients coming and going; RSS, fds, threads flat; no gap)"
/usr/bin/python3 bench/soak.py --minutes 2 --bin-dir target/debug --out target/soak-ci.md --csv target/soak-ci.csv
