#!/usr/bin/env bash
# Runs `redpg benchmark --json` RUNS times (default 3) with the given flags
# and prints the median of the figures docs/BENCHMARKS.md quotes, one line.
#
#   scripts/bench-medians.sh                       # defaults: 100k orders, batch 5000, 2 workers
#   RUNS=5 scripts/bench-medians.sh --workers 4
#   scripts/bench-medians.sh --preload 10000000    # slow: loads 10M rows per run
#
# Needs jq and bin/redpg (make build). Every ratio is to a baseline measured
# in the same run; medians are taken per figure, across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
bin=${REDPG:-bin/redpg}
[ -x "$bin" ] || { echo "no $bin: run make build first" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$runs"); do
	"$bin" benchmark --json "$@" 2>/dev/null | jq -c . >>"$out"
done

jq -rs --arg args "$*" '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def m(f): map(f) | med;
  def r2: . * 100 | round / 100;
  "args=[\($args)] runs=\(length)" +
  " e2e=\(m(.stages.end_to_end.orders_per_sec) | round)/s" +
  " ratio=\(m(.stages.end_to_end.ratio) | r2)" +
  " ratio_1stream=\(m(.end_to_end_vs_single_stream) | r2)" +
  " copy2=\(m(.baselines.copy_orders.orders_per_sec) | round)/s" +
  " copy1=\(m(.baselines.copy_orders_1.orders_per_sec) | round)/s" +
  " gen_enq=\(m(.stages.generate_enqueue.ratio) | r2)" +
  " enq=\(m(.stages.enqueue.ratio) | r2)" +
  " stage/w=\(m(.stages.stage.orders_per_sec) | round)" +
  " promote/w=\(m(.stages.promote.orders_per_sec) | round)" +
  " prepare/w=\(m(.stages.prepare.orders_per_sec) | round)" +
  " p50_flat=\(m(.latency_flat_out.p50_ms) | round)ms" +
  " p99_flat=\(m(.latency_flat_out.p99_ms) | round)ms" +
  (if .[0].latency_paced then " p50_paced=\(m(.latency_paced.latency.p50_ms) | r2)ms p99_paced=\(m(.latency_paced.latency.p99_ms) | r2)ms" else "" end) +
  (if .[0].mixed then " mixed=" + (map(.mixed) | tostring) else "" end) +
  " rss=\(m(.peak_rss_mb) | round)MB" +
  " each_ratio=\(map(.stages.end_to_end.ratio | r2))"
' "$out"
