#!/usr/bin/env bash
# Short fuzzing smoke run of every cargo-fuzz target (fuzz/, see docs/fuzzing.md), or of the
# targets named (`scripts/fuzz-smoke.sh mp4_file`), on the stable toolchain (`--sanitizer none`). Installs cargo-fuzz when missing. Each target runs
# FUZZ_SECONDS (default 12) from the committed seeds (fuzz/seeds/<target>) plus the
# corpus of earlier runs (fuzz/corpus/<target>, not committed); any crash fails the script
# and leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

secs="${FUZZ_SECONDS:-12}"
all=(rtsp_decoder rtsp_headers sdp rtp_depacketize tunnel audio_decoders rtsp_session stun onvif_soap store_index
  http wsse config mp4_file onvif_client picture_size talk_inputs whep_offer)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi
# Its own target dir: fuzz builds use other compiler flags than the workspace's.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}"

echo "== cargo fuzz build (sanitizer none)"
if (($#)); then
  for t in "${targets[@]}"; do cargo fuzz build --sanitizer none "$t"; done
else
  cargo fuzz build --sanitizer none
fi

for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== fuzz $t for ${secs}s"
  log="$(mktemp)"
  if ! cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -max_len=8192 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz $t FAILED: the input is in fuzz/artifacts/$t/ (make it a regression test)" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' '
  echo
  rm -f "$log"
done
echo "== fuzz smoke run: no crash"
