#!/usr/bin/env bash
# Soak: the whole workflow at length, resident memory sampled every second.
#
#   1. vlnav-data build: SOAK_EPISODES (2000) episodes, 64 px, two encoders (oracle, siglip-tiny-random);
#   2. vlnav-data embed: a third encoder (clip-tiny-random) added to the file;
#   3. vlnav-probe linear on the added encoder;
#   4. vlnav-policy train (BC on the oracle embeddings, SOAK_BC_STEPS gradient steps);
#   5. vlnav-policy eval: SOAK_EVAL_EPISODES (500) episodes.
#
# Every stage's RSS (the command's process and its direct children) is written to OUT/rss-<stage>.tsv
# (seconds, bytes). The check: the peak RSS of the last quarter of the build is at most 5% above the
# peak of its first quarter (memory does not grow with the number of episodes written); the ratio is
# printed and the script exits 1 when it is over. The figures go to OUT/soak.json.
#
#   bench/soak.sh [OUT]          # OUT defaults to a new directory under /tmp; it must not exist
#   SOAK_EPISODES=200 SOAK_EVAL_EPISODES=50 SOAK_BC_STEPS=200 bench/soak.sh /tmp/soak-small
set -euo pipefail

OUT=${1:-$(mktemp -u /tmp/vlnav-soak.XXXXXX)}
EPISODES=${SOAK_EPISODES:-2000}
EVAL_EPISODES=${SOAK_EVAL_EPISODES:-500}
BC_STEPS=${SOAK_BC_STEPS:-5000}
NUM_ENVS=${SOAK_NUM_ENVS:-16}
PYTHON=${PYTHON:-python}
if [ -e "$OUT" ]; then
  echo "error: $OUT exists; the soak writes into a new directory: pass a path that does not exist" >&2
  exit 2
fi
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)

echo "soak: $EPISODES-episode 64 px build (oracle + siglip-tiny-random), embed clip-tiny-random, probe, BC ($BC_STEPS steps), $EVAL_EPISODES-episode eval -> $OUT"
"$PYTHON" -c "import os, sys; sys.path.insert(0, '$HERE'); from machine_info import cpu_name; print(f'  CPU {cpu_name()}, {os.cpu_count()} logical cores, load avg', *(round(x, 1) for x in os.getloadavg()))"

rss_of_tree() {  # RSS bytes of pid $1 and its direct children
  local total=0 kb p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    kb=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${kb:-0} * 1024))
  done
  echo "$total"
}

stage() {  # stage NAME COMMAND...: run it, sample its RSS every second, record wall time
  local name=$1
  shift
  local log="$OUT/$name.log" tsv="$OUT/rss-$name.tsv" start now pid rc
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1 &
  pid=$!
  : >"$tsv"
  while kill -0 "$pid" 2>/dev/null; do
    now=$(date +%s.%N)
    echo "$(awk -v a="$now" -v b="$start" 'BEGIN {printf "%.1f", a - b}')	$(rss_of_tree "$pid")" >>"$tsv"
    sleep 1
  done
  rc=0
  wait "$pid" || rc=$?
  now=$(date +%s.%N)
  printf '  %-6s exit %d after %6.0f s; peak sampled RSS %s MiB; %s\n' "$name" "$rc" \
    "$(awk -v a="$now" -v b="$start" 'BEGIN {print a - b}')" \
    "$(awk -F'\t' 'BEGIN {m = 0} $2 > m {m = $2} END {printf "%.0f", m / 1048576}' "$tsv")" \
    "$(tail -n 1 "$log" | cut -c1-160)"
  if [ "$rc" -ne 0 ]; then
    echo "error: stage $name failed (exit $rc); its output is in $log" >&2
    exit 1
  fi
}

stage build vlnav-data build --out "$OUT/demos.h5" --num-episodes "$EPISODES" --image-size-px 64 \
  --encoder oracle --encoder siglip-tiny-random --num-envs "$NUM_ENVS" --no-progress
stage embed vlnav-data embed "$OUT/demos.h5" --encoder clip-tiny-random
stage probe vlnav-probe linear "$OUT/demos.h5" --out "$OUT/probe" --encoder clip-tiny-random --max-train-rows 5000
stage train vlnav-policy train "$OUT/demos.h5" --out "$OUT/bc" --encoder oracle --steps "$BC_STEPS"
stage eval vlnav-policy eval "$OUT/bc" --out "$OUT/bc-eval" --num-episodes "$EVAL_EPISODES"

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
figures = {}
for tsv in sorted(out.glob("rss-*.tsv")):
    rows = [tuple(map(float, line.split("\t"))) for line in tsv.read_text().splitlines() if line.strip()]
    figures[tsv.stem[4:]] = {"seconds": rows[-1][0] if rows else 0.0, "peak_rss_bytes": max((r[1] for r in rows), default=0)}
build = [float(line.split("\t")[1]) for line in (out / "rss-build.tsv").read_text().splitlines() if line.strip()]
q = max(1, len(build) // 4)
first, last = max(build[:q]), max(build[-q:])
ratio = last / first
figures["build_rss_last_quarter_over_first"] = ratio
figures["build_rss_first_quarter_peak_bytes"] = first
figures["build_rss_last_quarter_peak_bytes"] = last
(out / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
print(f"  build RSS: first quarter peak {first / 2**20:.0f} MiB, last quarter peak {last / 2**20:.0f} MiB, "
      f"ratio {ratio:.3f} (target <= 1.05) over {len(build)} one-second samples")
sys.exit(0 if ratio <= 1.05 else 1)
EOF
