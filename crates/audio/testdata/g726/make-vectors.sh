#!/usr/bin/env bash
# Regenerates the G.726 reference vectors in this folder (see README.md).
# Needs ffmpeg, gcc and libspandsp-dev (Debian: apt-get install ffmpeg gcc libspandsp-dev).
set -euo pipefail
cd "$(dirname "$0")"
q=(-hide_banner -loglevel error -y)

# 1 s of 8 kHz mono s16le: 440 + 1200 Hz mix (0-0.3 s); a quiet 2000 Hz tone that steps up
# 25 times at 0.42 s (tone and transition detectors); silence; a 150-3650 Hz chirp with a
# 5 Hz syllable envelope (speech-like); a very quiet 300 Hz tone.
ffmpeg "${q[@]}" -f lavfi -i "aevalsrc='if(lt(t,0.3), 0.3*sin(2*PI*440*t)+0.2*sin(2*PI*1200*t), if(lt(t,0.42), 0.02*sin(2*PI*2000*t+0.5), if(lt(t,0.5), 0.5*sin(2*PI*2000*t+0.5), if(lt(t,0.55), 0, if(lt(t,0.95), 0.5*sin(2*PI*(150*(t-0.55)+4375*(t-0.55)*(t-0.55)))*(0.55-0.45*cos(2*PI*5*(t-0.55))), 0.01*sin(2*PI*300*t))))))':s=8000:d=1" \
  -f s16le -ac 1 -ar 8000 input.raw

for bits in 2 3 4 5; do
  kbps=$((bits * 8))
  ffmpeg "${q[@]}" -f s16le -ar 8000 -ac 1 -i input.raw -c:a g726le -b:a ${kbps}k -f g726le ffmpeg-$kbps-le.g726
  ffmpeg "${q[@]}" -f s16le -ar 8000 -ac 1 -i input.raw -c:a g726 -b:a ${kbps}k -f g726 ffmpeg-$kbps-be.g726
  ffmpeg "${q[@]}" -f g726le -code_size $bits -sample_rate 8000 -i ffmpeg-$kbps-le.g726 -f s16le ffmpeg-$kbps.decoded.raw
  # Both packings carry the same code words, so they decode to the same samples.
  ffmpeg "${q[@]}" -f g726 -code_size $bits -sample_rate 8000 -i ffmpeg-$kbps-be.g726 -f s16le /tmp/g726-be-$$.raw
  cmp ffmpeg-$kbps.decoded.raw /tmp/g726-be-$$.raw
  rm /tmp/g726-be-$$.raw
done

tmp=$(mktemp -d)
gcc -O2 -Wall -o "$tmp/spandsp_ref" spandsp_ref.c -lspandsp
"$tmp/spandsp_ref" input.raw
rm -r "$tmp"
