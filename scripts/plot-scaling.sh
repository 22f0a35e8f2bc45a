#!/bin/sh
# Draws docs/scaling.svg from the TSV tables tests/bench/bench_scaling.sh writes:
#   CML_BENCH_OUT=/tmp/scaling tests/bench/bench_scaling.sh . && scripts/plot-scaling.sh /tmp/scaling
# Needs gnuplot (Debian: gnuplot-nox); only for redrawing the figure, never at run time.
set -eu
dir=${1:?usage: plot-scaling.sh TSV_DIR [OUT.svg]}
top=$(cd "$(dirname "$0")/.." && pwd)
svg=${2:-$top/docs/scaling.svg}
gnuplot <<GP
set terminal svg size 1000,720 dynamic font "sans,11" background rgb "white"
set output "$svg"
set datafile separator "\t"
set key top left
set logscale xy
set grid
set multiplot layout 2,3 title "cultivate-ml: how cost grows (one run, 2 shared cores; log-log)"
set title "classify vs text length (2x2, 32 conn.)"
set xlabel "characters"; set ylabel "ms"
plot "$dir/text_length.tsv" every ::1 using 1:3 with linespoints title "p50", \
     "" every ::1 using 1:4 with linespoints title "p99"
set title "batch route vs batch size"
set xlabel "texts"; set ylabel "ms"
plot "$dir/batch.tsv" every ::1 using 1:2 with linespoints title "classic", \
     "" every ::1 using 1:3 with linespoints title "ensemble"
set title "transcript analysis vs lesson length"
set xlabel "minutes"; set ylabel "ms"
plot "$dir/transcript.tsv" every ::1 using 1:3 with linespoints title "ensemble"
set title "classify vs connections (2x2)"
set xlabel "connections"; set ylabel "req/s"; set y2label "p99 ms"
set y2tics; set logscale y2
plot "$dir/connections.tsv" every ::1 using 1:2 with linespoints title "req/s", \
     "" every ::1 using 1:4 axes x1y2 with linespoints title "p99 (right)"
unset y2tics; unset y2label; unset logscale y2
set title "classify vs workers x threads (32 conn.)"
unset logscale xy
set style data histograms; set style fill solid 0.6
set xlabel "processes x threads"; set ylabel "req/s"; set yrange [0:*]
plot "$dir/layout.tsv" every ::1 using 2:xtic(1) title "req/s"
set style data linespoints; set yrange [*:*]; set logscale xy
set title "training vs corpus rows"
set xlabel "rows"; set ylabel "s"
plot "$dir/training.tsv" every ::1 using 1:2 with linespoints title "classic", \
     "" every ::1 using 1:4 with linespoints title "ensemble"
unset multiplot
GP
echo "wrote $svg"
