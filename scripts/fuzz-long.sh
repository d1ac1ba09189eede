#!/usr/bin/env bash
# Long fuzzing runs with AddressSanitizer (docs/fuzzing.md, "Long runs with
# AddressSanitizer"). Not for CI: it needs the nightly toolchain (`-Zsanitizer=address`)
# and takes FUZZ_MINUTES (default 60) per target.
#
#   scripts/fuzz-long.sh                 # every target, one after the other
#   FUZZ_MINUTES=8 scripts/fuzz-long.sh http wsse
#
# The fuzz crate (the targets named, or all) is built once, up front (`cargo +nightly fuzz
# build`, sanitizer address, release with debug assertions, CARGO_TARGET_DIR
# target/fuzz-asan); each target's binary
# then runs by itself, exactly as `cargo fuzz run` would start it, from the committed seeds
# (fuzz/seeds/<target>) and the corpus of earlier runs (fuzz/corpus/<target>, where new
# inputs go). Building once means an edit of fuzz/ during a long run cannot change the
# targets still to run. One fuzzer at a time, one process: it uses one core.
#
# After each target one row is appended to the table in docs/fuzzing.md: date, target,
# minutes, executions, exec/s, coverage (`cov:` and `ft:` of libFuzzer's last status line),
# corpus size (`corp:` of that line: inputs/bytes), peak RSS, findings. A crash, leak,
# timeout or out-of-memory stops that target, keeps the input in fuzz/artifacts/<target>/,
# is recorded as the finding, and the script goes on with the next target; it exits 1 at
# the end if any target had a finding. Logs: target/fuzz-asan/logs/<target>.log. The row
# names the commit fuzzed (`+` when crates/ or fuzz/ had uncommitted changes).
set -euo pipefail
cd "$(dirname "$0")/.."

mins="${FUZZ_MINUTES:-60}"
all=(rtsp_decoder rtsp_headers sdp rtp_depacketize tunnel audio_decoders rtsp_session stun
  onvif_soap store_index http wsse config mp4_file onvif_client picture_size talk_inputs whep_offer)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
export CARGO_TARGET_DIR="${FUZZ_ASAN_TARGET_DIR:-target/fuzz-asan}"
triple="$(rustc +"$toolchain" -vV | sed -n 's/^host: //p')"
bindir="$CARGO_TARGET_DIR/$triple/release"
logdir="$CARGO_TARGET_DIR/logs"
# Where the rows go (another checkout's, when this one is a clean worktree of a commit).
doc="${FUZZ_DOC:-docs/fuzzing.md}"
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates fuzz || echo +)"
mkdir -p "$logdir"

echo "== cargo +$toolchain fuzz build (sanitizer address) into $CARGO_TARGET_DIR"
for t in "${targets[@]}"; do
  [[ -f "fuzz/fuzz_targets/$t.rs" ]] || { echo "no fuzz target $t" >&2; exit 2; }
done
# One job: the run keeps to one core (FUZZ_JOBS to change). Only the targets named, when
# some are: the others may need crates (config: the server) that are not to be rebuilt.
if (($#)); then
  for t in "${targets[@]}"; do
    CARGO_BUILD_JOBS="${FUZZ_JOBS:-1}" cargo +"$toolchain" fuzz build --sanitizer address "$t"
  done
else
  CARGO_BUILD_JOBS="${FUZZ_JOBS:-1}" cargo +"$toolchain" fuzz build --sanitizer address
fi

# Appends one row to the "Long runs with AddressSanitizer" table (the section and its
# header are created at the end of the document when missing).
append_row() {
  local row="$1"
  if ! grep -q '^## Long runs with AddressSanitizer' "$doc"; then
    cat >>"$doc" <<'EOF'

## Long runs with AddressSanitizer

Rows appended by `scripts/fuzz-long.sh` (nightly, `-Zsanitizer=address`, release with
debug assertions, one target at a time on one core). Coverage is `cov` (edges) / `ft`
(features) of libFuzzer's last status line; the corpus is `corp:` of that line (inputs /
bytes).

| date | commit | target | minutes | executions | exec/s | cov | ft | corpus | peak RSS | findings |
|---|---|---|---|---|---|---|---|---|---|---|
EOF
  fi
  # Insert after the last table row of that section (before the next heading, if any).
  awk -v row="$row" '
    { lines[++n] = $0 }
    /^## / { insec = ($0 ~ /^## Long runs with AddressSanitizer/) }
    insec && /^\|/ { last = n }
    END {
      for (i = 1; i <= n; i++) {
        print lines[i]
        if (i == last) print row
      }
    }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
}

# 1234567 -> 1,234,567
thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' <<<"$1"; }

failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="$logdir/$t.log"
  marker="$logdir/$t.start"
  touch "$marker"
  echo "== $t: ${mins} min with AddressSanitizer (log $log)"
  status=0
  "$bindir/$t" -artifact_prefix="fuzz/artifacts/$t/" -max_total_time="$((mins * 60))" \
    -max_len=8192 -timeout=60 -print_final_stats=1 \
    "fuzz/corpus/$t" "fuzz/seeds/$t" >"$log" 2>&1 || status=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  execs="$(stat number_of_executed_units)"
  rate="$(stat average_exec_per_sec)"
  rss="$(stat peak_rss_mb)"
  last="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
  field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
  cov="$(field cov)"
  ft="$(field ft)"
  corp="$(field corp)"
  # Without final stats (a crash), the executions and RSS come from the last status line.
  [[ -n "$execs" ]] || execs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
  [[ -n "$rss" ]] || rss="$(sed -n 's/.* rss: \([0-9]*\)Mb.*/\1/p' <<<"$last")"
  ran="$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
  minutes="$mins"
  findings="none"
  if ((status != 0)); then
    failed=1
    new="$(find "fuzz/artifacts/$t" -type f -newer "$marker" -printf '%f ' | sed 's/ $//')"
    kind="$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z -]+' "$log" || true)"
    [[ -n "$kind" ]] || kind="$(grep -m1 -oE "panicked at [^:]+:[0-9]+" "$log" || true)"
    findings="**${kind:-exit $status}**, input fuzz/artifacts/$t/${new:-?} (stopped the run)"
    minutes="< $mins (stopped)"
    tail -n 40 "$log" >&2
  elif [[ -n "$ran" ]]; then
    minutes="$(awk -v s="$ran" 'BEGIN { printf "%.1f", s / 60 }')"
  fi
  [[ -n "$rate" ]] || rate="-"
  row="| $(date -u +%F) | $commit | \`$t\` | $minutes | $(thousands "${execs:-?}") | ${rate} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${rss:-?} MB | $findings |"
  append_row "$row"
  echo "$row"
done
exit "$failed"
