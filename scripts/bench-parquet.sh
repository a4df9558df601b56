#!/usr/bin/env bash
# The Parquet export against the NDJSON export of the same store (BENCHMARKS.md, "Parquet
# export"). Builds the release `edbx` and the test kit's server launcher, starts a real server
# (the cached release `dbx` 3.19.4: Noise, verbose responses, loopback), loads EVENTS one-event
# aggregates of four types with `edbx import` (default 100,000), then exports the store as NDJSON
# and as Parquet (one file with the defaults: zstd, row groups of 65,536 rows; partitioned by
# type; one file with row groups of 8,192 rows, of which the store fills more than ten), each
# reading 32 aggregates at once and each under /usr/bin/time -v, and prints a Markdown table:
# events/s, bytes per event, peak resident memory, the exporter's CPU time. Every export is
# checked to hold every event. Give EVENTS of 655,360 or more for more than ten row groups of
# the default size (on a busy 2-core machine, over two hours).
#
#     scripts/bench-parquet.sh [EVENTS]
#
# About 15 minutes on a busy 2-core machine after the release build: both exports are bound by
# the server's request rate (a request per one-event aggregate). Environment: EDBX_CACHE_DIR
# (default $HOME/.cache/edbx), CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "bench-parquet: $*" >&2; }

events="${1:-100000}"
target="${CARGO_TARGET_DIR:-$(pwd)/target}"
scripts/ensure-tools.sh >&2
[[ -x /usr/bin/time ]] || { say "needs /usr/bin/time (apt-get install time)"; exit 1; }

say "building the release edbx and edbx-test-server"
cargo build --release --quiet -p edbx-cli --bin edbx -p edbx-testkit --bin edbx-test-server
edbx="$target/release/edbx"

work=$(mktemp -d)
coproc SERVER { "$target/release/edbx-test-server"; }
server_pid=$SERVER_PID
cleanup() {
    exec {SERVER[1]}>&- 2>/dev/null || true # end of stdin stops the server and removes its data
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
read -r hello <&"${SERVER[0]}"
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$hello" "$1"; }
export EVENTDBX_HOST EVENTDBX_PORT EVENTDBX_TOKEN EVENTDBX_TENANT_ID
EVENTDBX_HOST=$(field host)
EVENTDBX_PORT=$(field port)
EVENTDBX_TOKEN=$(field token)
EVENTDBX_TENANT_ID=$(field tenant)

say "loading $events events ($events one-event aggregates of 4 types) with edbx import"
python3 - "$events" >"$work/load.ndjson" <<'EOF'
import json
import random
import sys

n = int(sys.argv[1])
rnd = random.Random(42)
cities = ["Oslo", "Zürich", "Lyon", "Kraków", "São Paulo", "東京", "Nairobi", "Montréal"]
kinds = [("orders", "order.placed"), ("customers", "customer.joined"),
         ("payments", "payment.captured"), ("shipments", "shipment.sent")]
for i in range(n):
    aggregate_type, event_type = kinds[i % 4]
    payload = {
        "total": round(rnd.uniform(1, 500), 2),
        "currency": rnd.choice(["EUR", "USD", "NOK"]),
        "city": rnd.choice(cities),
        "status": rnd.choice(["new", "paid", "shipped", "returned"]),
        "customer": f"c-{rnd.randrange(100_000)}",
        "items": [{"sku": f"sku-{rnd.randrange(5_000)}", "qty": rnd.randrange(1, 5)}
                  for _ in range(rnd.randrange(1, 4))],
    }
    line = {"aggregate_type": aggregate_type, "aggregate_id": f"{aggregate_type[0]}-{i:07d}",
            "event_type": event_type, "payload": payload}
    print(json.dumps(line, ensure_ascii=False))
EOF
started=$(date +%s)
"$edbx" import "$work/load.ndjson" --concurrency 16 --progress never --log "$work/load.log" >/dev/null
say "loaded in $(($(date +%s) - started)) s"
rm -f "$work/load.ndjson" "$work/load.log"

# measure NAME OUTPUT ARGS…: runs `edbx ARGS…` under /usr/bin/time, checks the rows it wrote,
# and prints one table row.
measure() {
    local name=$1 output=$2
    shift 2
    rm -rf "$output" "$output.partial"
    /usr/bin/time -v -o "$work/time" "$edbx" "$@" >"$work/report" 2>"$work/stderr" || {
        cat "$work/stderr" >&2
        exit 1
    }
    local rows bytes
    if [[ "$*" == *parquet* ]]; then
        rows=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rows"])' "$work/report")
    else
        rows=$(wc -l <"$output")
    fi
    [[ "$rows" == "$events" ]] || { say "$name wrote $rows rows, not $events"; exit 1; }
    bytes=$(du -sb "$output" | cut -f1)
    python3 - "$name" "$rows" "$bytes" "$work/time" <<'EOF'
import re
import sys

name, rows, size, timing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4]).read()
clock = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", timing)
seconds = int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", timing).group(1))
          for kind in ("User", "System"))
print(f"| {name} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} | {size:,} | "
      f"{size / rows:.1f} | {rss / 1024:.1f} MiB | {cpu:.1f} s ({cpu * 1e6 / rows:.1f} µs/event) |")
EOF
}

say "exporting (each run checks that every event was written)"
cores=$(nproc)
echo "Store: $events events of $events aggregates (4 types), server 3.19.4 release build on"
echo "loopback (Noise, verbose responses), $cores cores shared by client and server; edbx release build,"
echo "32 aggregates read at once."
echo
echo "| export | events | seconds | events/s | bytes | bytes/event | peak RSS | edbx CPU (user + system) |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|"
measure "NDJSON (\`edbx export\`)" "$work/store.ndjson" \
    export --out "$work/store.ndjson" --concurrency 32 --progress never
measure "Parquet, one file, zstd (defaults)" "$work/store.parquet" \
    export --format parquet --out "$work/store.parquet" --concurrency 32 --progress never
measure "Parquet, \`--partition-by aggregate_type\`" "$work/lake" \
    export --format parquet --out "$work/lake" --partition-by aggregate_type --concurrency 32 \
    --progress never
measure "Parquet, one file, \`--row-group-size 8192\`" "$work/small-groups.parquet" \
    export --format parquet --out "$work/small-groups.parquet" --row-group-size 8192 \
    --concurrency 32 --progress never
