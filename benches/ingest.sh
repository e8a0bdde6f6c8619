#!/usr/bin/env bash
# Load scenario: durable ingest over REST and gRPC, next to the raw redb append ceiling,
# measured in one run on one machine (absolute numbers on a shared machine are noisy; the
# ratios of one run are what BENCHMARKS.md records).
#
#   benches/ingest.sh                      # 1,000,000 events per protocol
#   EVENTS=200000 CONCURRENCY=8 benches/ingest.sh
#
# Steps: build the release binary; run the hot tier's criterion bench (HotStore::append and
# the raw redb ceiling: one 1,600-event row per fsync'd commit); start `strata serve` on a
# scratch data directory with ephemeral ports; drive it with `strata load` over REST (JSON
# array), REST (NDJSON) and gRPC; stop it with SIGTERM; print a summary table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
CONCURRENCY=${CONCURRENCY:-8}
export EVENTS BATCH CONCURRENCY

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> building the release binary" >&2
cargo build --release -p strata --quiet
bin=target/release/strata

echo "==> hot tier bench (HotStore::append and the raw redb ceiling)" >&2
cargo bench -p strata-hot --bench hot_append --quiet -- --noplot >&2

echo "==> starting strata serve" >&2
"$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --log-format json --log-level info 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 1 300); do
    grep -q '"listening"' "$work/serve.log" 2>/dev/null && break
    sleep 0.1
done
addrs=$(python3 - "$work/serve.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    fields = rec.get("fields", rec)
    if fields.get("message") == "listening":
        print(fields["http_addr"], fields["grpc_addr"])
        break
PY
)
read -r http grpc <<<"$addrs"
[ -n "${http:-}" ] || { echo "server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

run_load() {
    local name=$1
    shift
    echo "==> strata load: $name" >&2
    "$bin" load --events "$EVENTS" --batch-size "$BATCH" --concurrency "$CONCURRENCY" \
        --json "$@" >"$work/$name.json"
}
run_load rest --protocol rest --target "http://$http" --seed 1
run_load rest_ndjson --protocol rest --ndjson --target "http://$http" --seed 2
run_load grpc --protocol grpc --target "http://$grpc" --seed 3

python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def criterion(name, events_per_iter):
    path = os.path.join("target", "criterion", "hot_append", name, "new", "estimates.json")
    with open(path) as f:
        ns = json.load(f)["mean"]["point_estimate"]
    return events_per_iter / (ns / 1e9)
ceiling = criterion("redb_ceiling_1600_per_row", 1600)
store = criterion("store_16_writers_x_100", 16 * 100 * 10)
print(f"| what | events/s | × redb ceiling |")
print(f"| --- | --- | --- |")
print(f"| raw redb, 1,600 events per fsync'd row (ceiling) | {ceiling:,.0f} | 1.00 |")
print(f"| HotStore::append, 16 writers × 100-event batches | {store:,.0f} | {store/ceiling:.2f} |")
for name, label in [("rest", "REST JSON array"), ("rest_ndjson", "REST NDJSON"), ("grpc", "gRPC Ingest.Write")]:
    with open(os.path.join(work, name + ".json")) as f:
        r = json.load(f)
    lat = r["latency_ms"]
    print(f"| strata load, {label}, batches of {os.environ.get('BATCH', '1000')}, "
          f"p50 {lat['p50']:.1f} ms / p99 {lat['p99']:.1f} ms per request | "
          f"{r['events_per_s']:,.0f} | {r['events_per_s']/ceiling:.2f} |")
PY
