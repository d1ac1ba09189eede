#!/usr/bin/env bash
# Plots the samples of bench/soak.py (CSV: t_s,rss_kib,fds,threads) as three curves over
# minutes: RSS (MiB), open file descriptors, threads. Needs gnuplot (Debian `gnuplot-nox`).
#   bench/soak_plot.sh [bench/soak.csv] [bench/soak.png]
set -euo pipefail
csv=${1:-bench/soak.csv}
png=${2:-bench/soak.png}
[ -s "$csv" ] || { echo "soak_plot.sh: $csv is missing or empty (run bench/soak.py first)" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 900,600 font ",9"
set output "$png"
set datafile separator ","
set key off
set multiplot layout 3,1 title "ipcamd soak: $(basename "$csv")"
set xlabel ""
set ylabel "RSS (MiB)"
set yrange [0:*]
plot "$csv" every ::1 using (\$1/60):(\$2/1024) with lines lw 2
set ylabel "open fds"
plot "$csv" every ::1 using (\$1/60):3 with lines lw 2
set xlabel "minutes"
set ylabel "threads"
plot "$csv" every ::1 using (\$1/60):4 with lines lw 2
unset multiplot
GP
echo "soak_plot.sh: wrote $png"
