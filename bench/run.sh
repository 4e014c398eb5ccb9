#!/usr/bin/env bash
# freshtap benchmark harness: baselines, intake, end to end, idle latency, overload, backlog and
# (when FRESHTAP_BENCH_DATABASE_URL is set) PostgreSQL, all in one run on this machine.
#
#   bench/run.sh           full run: bench/results/latest.json and BENCHMARKS.md (~10 min)
#   bench/run.sh --smoke   tiny load, results in a temporary directory; non-zero if anything is
#                          lost or a scenario produced no numbers (CI)
#
# Everything listens on 127.0.0.1; every load is bounded in time; every process started here
# is stopped at exit. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=full
case "${1:-}" in
    --smoke) MODE=smoke ;;
    "") ;;
    *) echo "usage: bench/run.sh [--smoke]" >&2; exit 2 ;;
esac

if [ "$MODE" = full ]; then
    DURATION=${BENCH_DURATION:-10}
    CONNECTIONS=${BENCH_CONNECTIONS:-"16 64"}
    BACKLOG=${BENCH_BACKLOG:-1000000}
    LATENCY_COUNT=${BENCH_LATENCY_COUNT:-200}
    OVERLOAD_SECS=${BENCH_OVERLOAD_SECS:-15}
    OUT=$ROOT/bench/results
    REPORT=$ROOT/BENCHMARKS.md
else
    DURATION=${BENCH_DURATION:-2}
    CONNECTIONS=${BENCH_CONNECTIONS:-"16"}
    BACKLOG=${BENCH_BACKLOG:-20000}
    LATENCY_COUNT=${BENCH_LATENCY_COUNT:-20}
    OVERLOAD_SECS=${BENCH_OVERLOAD_SECS:-2}
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/freshtap-bench-smoke.XXXXXX")
    REPORT=$OUT/BENCHMARKS.md
fi
MAX_CONN=${CONNECTIONS##* }
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-600}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- tools and build
need_apt_update=1
apt_install() {
    if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt_install wrk; }
for tool in curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is required" >&2; exit 1; }
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
log "building (release, bins and examples)"
cargo build --release --locked --bins --examples
BIN=$TARGET/release/freshtap
EX=$TARGET/release/examples

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/freshtap-bench.XXXXXX")
PIDS=()
PG_SCHEMAS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${#PG_SCHEMAS[@]}" -gt 0 ] && command -v psql >/dev/null 2>&1; then
        for schema in "${PG_SCHEMAS[@]}"; do
            psql -q "$FRESHTAP_BENCH_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MEASUREMENTS=$OUT/measurements.jsonl
COMMANDS=$WORK/commands.txt
mkdir -p "$OUT"
: >"$MEASUREMENTS"
: >"$COMMANDS"

# A command as recorded in the results: local paths replaced by names.
note_command() {
    local line="$*"
    line=${line//$WORK/\$WORK}
    line=${line//$TARGET/\$CARGO_TARGET_DIR}
    line=${line//$ROOT\//}
    printf '%s\n' "$line" >>"$COMMANDS"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL: until it answers 2xx (30 s)
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: $1 did not come up" >&2
    return 1
}

stop() { # PID: SIGTERM, then SIGKILL after 30 s; forgotten by the exit trap
    local pid=$1 kept=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    PIDS=("${kept[@]}")
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# JSON helpers (python3, standard library only).
jget() { # JSON FIELD.PATH
    python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}
emit() { # scenario JSON fragments...: merges them into one line of measurements.jsonl
    python3 -c 'import json,sys
out={"scenario":sys.argv[1]}
for frag in sys.argv[2:]: out.update(json.loads(frag))
print(json.dumps(out, sort_keys=True))' "$@" >>"$MEASUREMENTS"
}
check() { # NAME OK(0/1) DETAIL: an exactness check, recorded; the report fails on ok=false
    emit check "{\"name\":\"$1\",\"ok\":$([ "$2" = 1 ] && echo true || echo false),\"detail\":\"$3\"}"
    if [ "$2" = 1 ]; then log "check ok: $1 ($3)"; else log "CHECK FAILED: $1 ($3)"; fi
}

# ---------------------------------------------------------------- the processes under test
TOKEN=bench-token
ADMIN=bench-admin
CONFIG=$WORK/bench.toml
cat >"$CONFIG" <<'EOF'
[clevertap.accounts.main]
account_id = "SIM-ACC-001"
passcode = "sim-passcode"
[auth]
token = "bench-token"
admin_token = "bench-admin"
[log]
level = "info"
[server]
shutdown_grace_secs = 5
EOF

start_sim() { # NAME [simulate-clevertap args]: sets SIM_PID, SIM_URL
    local name=$1; shift
    local port; port=$(free_port)
    note_command "$BIN simulate-clevertap --bind 127.0.0.1:PORT $*"
    "$BIN" simulate-clevertap --bind "127.0.0.1:$port" "$@" >"$WORK/$name.sim.log" 2>&1 &
    SIM_PID=$!; PIDS+=("$SIM_PID")
    SIM_URL=http://127.0.0.1:$port
    wait_http "$SIM_URL/_sim/stats"
}

start_relay() { # NAME QUEUE_URL [VAR=value...]: sets RELAY_PID, RELAY_URL
    local name=$1 queue=$2; shift 2
    local port; port=$(free_port)
    note_command "FRESHTAP__QUEUE__URL=<queue> FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__BASE_URL=<simulator> $* $BIN --config bench.toml serve"
    env FRESHTAP__SERVER__BIND="127.0.0.1:$port" FRESHTAP__QUEUE__URL="$queue" \
        FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__BASE_URL="${SIM_URL:-http://127.0.0.1:9}" \
        "$@" \
        "$BIN" --config "$CONFIG" serve >>"$WORK/$name.relay.log" 2>&1 &
    RELAY_PID=$!; PIDS+=("$RELAY_PID")
    RELAY_URL=http://127.0.0.1:$port
    wait_http "$RELAY_URL/readyz"
}

run_wrk() { # CONNECTIONS SECONDS URL TAG: prints wrk's JSON line; row ids of its 202s go to $WORK/ids.TAG
    local conns=$1 secs=$2 url=$3 tag=$4 threads=2
    [ "$conns" -lt 2 ] && threads=1
    note_command "BENCH_TAG=<unique> wrk -t$threads -c$conns -d${secs}s --timeout 10s -s bench/webhook.lua http://127.0.0.1:PORT/webhooks/contacts"
    BENCH_TAG="$tag$$" BENCH_TOKEN=$TOKEN BENCH_IDS_FILE="$WORK/ids.$tag" \
        wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s -s "$ROOT/bench/webhook.lua" \
        "$url/webhooks/contacts" >"$WORK/wrk.$tag.out" 2>&1 || true
    if ! grep -q '^BENCH_JSON ' "$WORK/wrk.$tag.out"; then
        cat "$WORK/wrk.$tag.out" >&2
        echo '{"requests":0,"status_202":0,"rps":0,"failed":true}'
        return 0
    fi
    grep '^BENCH_JSON ' "$WORK/wrk.$tag.out" | tail -n 1 | cut -d' ' -f2-
}

admin_rows() { curl -sf -H "Authorization: Bearer $ADMIN" "$1/admin/stats"; }
sim_stats() { curl -sf "$SIM_URL/_sim/stats"; }
sim_network() { # SIM_STATS_JSON: "most uploads in flight at once (429-refused ones included) throttled"
    python3 -c 'import json,sys
s=json.loads(sys.argv[1]); a=s.get("accounts", {}).values()
print(max([x["max_in_flight_seen"] for x in a] or [0]), sum(x["throttled"] for x in a))' "$1"
}

wait_drained() { # RELAY_URL...: until no row is pending or leased on the (shared) queue; prints seconds
    local started; started=$(date +%s.%N)
    local deadline=$(($(date +%s) + DRAIN_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        local stats; stats=$(admin_rows "$1" || echo '{}')
        if [ "$(python3 -c 'import json,sys
r=json.loads(sys.argv[1]).get("rows")
print(1 if r and r["pending"]==0 and r["leased"]==0 else 0)' "$stats")" = 1 ]; then
            python3 -c "import time; print(round(time.time()-$started, 3))"
            return 0
        fi
        sleep 0.2
    done
    echo -1
}

# Exactly once. Every webhook carries its own identity; the simulator keeps one profile per
# identity (--keep-profiles), so `profiles` counts distinct identities received. After the
# queue drained, nothing lost and nothing doubled means:
#   records accepted == distinct identities == rows in the queue == rows delivered, none dead
#   or rejected, and the row id of every 202 wrk read (its answer body) is one of those rows.
# (wrk stops with requests in flight: those may be stored without wrk seeing the 202, so the
# 202s are checked by id, not by count.)
queue_ids() { # QUEUE_URL: every row id in the queue, one a line
    case "$1" in
        sqlite://*) python3 -c 'import sqlite3,sys
for (i,) in sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute("SELECT id FROM webhooks"): print(i)' "${1#sqlite://}" ;;
        *) psql -qAt "$1" -c 'SELECT id FROM webhooks' ;;
    esac
}
verify() { # LABEL QUEUE_URL ADMIN_URL DELIVERED(1: expect all delivered, 0: all pending) IDS_TAG...
    local label=$1 queue=$2 admin=$3 delivered_expected=$4; shift 4
    local rows pending leased delivered dead total tag ok=1 detail
    rows=$(admin_rows "$admin")
    pending=$(jget "$rows" rows.pending); leased=$(jget "$rows" rows.leased)
    delivered=$(jget "$rows" rows.delivered); dead=$(jget "$rows" rows.dead)
    total=$((pending + leased + delivered + dead))
    : >"$WORK/ids.seen"
    for tag in "$@"; do cat "$WORK/ids.$tag" >>"$WORK/ids.seen" 2>/dev/null || ok=0; done
    queue_ids "$queue" >"$WORK/ids.queue"
    local seen missing repeated
    seen=$(grep -c . "$WORK/ids.seen" || true)
    repeated=$(sort "$WORK/ids.seen" | uniq -d | grep -c . || true)
    missing=$(sort -u "$WORK/ids.seen" | comm -23 - <(sort -u "$WORK/ids.queue") | grep -c . || true)
    detail="202s read: $seen (ids not in the queue: $missing, repeated: $repeated); queue rows: $total, delivered: $delivered, dead: $dead"
    [ "$seen" -gt 0 ] && [ "$missing" = 0 ] && [ "$repeated" = 0 ] && [ "$dead" = 0 ] || ok=0
    if [ "$delivered_expected" = 1 ]; then
        local sim accepted profiles rejected
        sim=$(sim_stats)
        accepted=$(jget "$sim" records_accepted); profiles=$(jget "$sim" profiles); rejected=$(jget "$sim" records_rejected)
        detail="$detail; simulator records accepted: $accepted, distinct identities: $profiles, rejected: $rejected"
        [ "$accepted" = "$total" ] && [ "$profiles" = "$total" ] && [ "$delivered" = "$total" ] && [ "$rejected" = 0 ] || ok=0
        LAST_SIM_ACCEPTED=$accepted
    else
        [ "$pending" = "$total" ] || ok=0
    fi
    check "$label" "$ok" "$detail"
}

new_sqlite() { mkdir -p "$WORK/$1"; echo "sqlite://$WORK/$1/freshtap.db"; }

PG_ENABLED=0
PG_REASON="FRESHTAP_BENCH_DATABASE_URL is not set"
if [ -n "${FRESHTAP_BENCH_DATABASE_URL:-}" ]; then
    if command -v psql >/dev/null 2>&1 && psql -qAt "$FRESHTAP_BENCH_DATABASE_URL" -c 'SELECT 1' >/dev/null 2>&1; then
        PG_ENABLED=1; PG_REASON=""
    else
        PG_REASON="psql missing or the database at FRESHTAP_BENCH_DATABASE_URL is unreachable"
    fi
fi
new_pg() { # NAME: a fresh schema; prints the queue URL
    local schema="ftbench_$$_$1"
    psql -q "$FRESHTAP_BENCH_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    PG_SCHEMAS+=("$schema")
    local sep='?'; case "$FRESHTAP_BENCH_DATABASE_URL" in *\?*) sep='&' ;; esac
    echo "$FRESHTAP_BENCH_DATABASE_URL${sep}options=-csearch_path%3D$schema"
}

SIM_ARGS=(--lean --keep-profiles)
BENCH_STARTED=$(date +%s)

# ---------------------------------------------------------------- 1. parse-only baseline
for c in $CONNECTIONS; do
    log "parse-only, $c connections"
    port=$(free_port)
    note_command "$EX/bench_parse_only 127.0.0.1:PORT"
    "$EX/bench_parse_only" "127.0.0.1:$port" >"$WORK/parse.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    w=$(run_wrk "$c" "$DURATION" "http://127.0.0.1:$port" "parse$c")
    emit parse_only "{\"connections\":$c,\"rss_peak_kb\":$(hwm_kb "$pid")}" "$w"
    stop "$pid"
done

# ---------------------------------------------------------------- 2. naive relay baseline
# Its simulator has no concurrency cap: the naive relay sends one request per webhook and
# would otherwise be refused (429) above 15 in flight, as CleverTap refuses it.
for c in $CONNECTIONS; do
    log "naive relay, $c connections"
    start_sim naive --lean --keep-profiles --max-in-flight 100000
    port=$(free_port)
    note_command "$EX/bench_naive_relay 127.0.0.1:PORT <simulator>"
    "$EX/bench_naive_relay" "127.0.0.1:$port" "$SIM_URL" >"$WORK/naive.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    w=$(run_wrk "$c" "$DURATION" "http://127.0.0.1:$port" "naive$c")
    sim=$(sim_stats)
    emit naive_relay "{\"connections\":$c,\"rss_peak_kb\":$(hwm_kb "$pid"),\"sim_records_accepted\":$(jget "$sim" records_accepted),\"delivered_per_s\":$(jget "$w" accepted_per_s)}" "$w"
    stop "$pid"; stop "$SIM_PID"; SIM_URL=
done

# ---------------------------------------------------------------- 3. freshtap intake alone
intake_scenario() { # SCENARIO QUEUE_KIND
    local scenario=$1 kind=$2 c queue
    for c in $CONNECTIONS; do
        log "$scenario, $c connections"
        if [ "$kind" = sqlite ]; then queue=$(new_sqlite "$scenario$c"); else queue=$(new_pg "i$c"); fi
        start_relay "$scenario" "$queue" FRESHTAP__DELIVERY__ENABLED=false
        local w rows
        w=$(run_wrk "$c" "$DURATION" "$RELAY_URL" "$scenario$c")
        rows=$(admin_rows "$RELAY_URL")
        emit "$scenario" "{\"connections\":$c,\"rss_peak_kb\":$(hwm_kb "$RELAY_PID"),\"queue\":\"$kind\",\"rows_pending\":$(jget "$rows" rows.pending)}" "$w"
        verify "$scenario-$c: every 202 is a stored row" "$queue" "$RELAY_URL" 0 "$scenario$c"
        stop "$RELAY_PID"
    done
}
intake_scenario intake sqlite

# ---------------------------------------------------------------- 4. freshtap end to end
e2e_point() { # SCENARIO KIND CONNECTIONS QUEUE_URL LOAD_URL RELAY_PID...: load, drain, verify, emit
    local scenario=$1 kind=$2 c=$3 queue=$4 url=$5; shift 5
    local started w drain rss="" pid
    started=$(date +%s.%N)
    w=$(run_wrk "$c" "$DURATION" "$url" "$scenario$c")
    for pid in "$@"; do rss="$rss$(hwm_kb "$pid"),"; done
    drain=$(wait_drained "$url")
    local total; total=$(python3 -c "import time; print(round(time.time()-$started, 3))")
    verify "$scenario-$c: every 202 delivered exactly once" "$queue" "$url" 1 "$scenario$c"
    emit "$scenario" "{\"connections\":$c,\"queue\":\"$kind\",\"replicas\":$#,\"rss_peak_kb\":$(python3 -c "print(max([${rss%,}]))"),\"rss_peak_kb_each\":[${rss%,}],\"drain_after_load_s\":$drain,\"load_plus_drain_s\":$total,\"delivered\":$LAST_SIM_ACCEPTED,\"delivered_per_s\":$(python3 -c "print(round($LAST_SIM_ACCEPTED/$total,1))")}" "$w"
}
for c in $CONNECTIONS; do
    log "end to end, $c connections"
    start_sim e2e "${SIM_ARGS[@]}"
    q=$(new_sqlite "e2e$c")
    start_relay e2e "$q"
    e2e_point e2e sqlite "$c" "$q" "$RELAY_URL" "$RELAY_PID"
    stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=
done

# ---------------------------------------------------------------- 4b. a CleverTap-like network
# CleverTap holds each upload for a round trip (~150 ms) and answers 429 beyond 15 requests in
# flight per account: the naive relay forwards each webhook inline and meets both; freshtap
# batches and keeps to `delivery.max_in_flight`.
CT_ARGS=(--lean --keep-profiles --latency-ms "${BENCH_CT_LATENCY_MS:-150}" --max-in-flight 15)
log "CleverTap-like network: naive relay, $MAX_CONN connections"
start_sim naive-ct "${CT_ARGS[@]}"
port=$(free_port)
"$EX/bench_naive_relay" "127.0.0.1:$port" "$SIM_URL" >"$WORK/naive-ct.log" 2>&1 &
pid=$!; PIDS+=("$pid")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
w=$(run_wrk "$MAX_CONN" "$DURATION" "http://127.0.0.1:$port" "naivect")
sim=$(sim_stats); net=$(sim_network "$sim")
emit naive_ct "{\"connections\":$MAX_CONN,\"rss_peak_kb\":$(hwm_kb "$pid"),\"sim_records_accepted\":$(jget "$sim" records_accepted),\"delivered_per_s\":$(python3 -c "print(round($(jget "$sim" records_accepted)/$DURATION,1))"),\"sim_max_in_flight_seen\":${net% *},\"sim_throttled\":${net#* }}" "$w"
stop "$pid"; stop "$SIM_PID"; SIM_URL=
log "CleverTap-like network: freshtap end to end, $MAX_CONN connections"
start_sim e2e-ct "${CT_ARGS[@]}"
q=$(new_sqlite e2ect)
start_relay e2e-ct "$q"
e2e_point e2e_ct sqlite "$MAX_CONN" "$q" "$RELAY_URL" "$RELAY_PID"
sim=$(sim_stats); net=$(sim_network "$sim")
emit e2e_ct_network "{\"connections\":$MAX_CONN,\"max_in_flight\":10,\"sim_max_in_flight_seen\":${net% *},\"sim_throttled\":${net#* },\"latency_ms\":${BENCH_CT_LATENCY_MS:-150}}"
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=

# ---------------------------------------------------------------- 4c. many connections
MANY_CONNS=${BENCH_MANY_CONNECTIONS:-$([ "$MODE" = full ] && echo 2000 || echo 200)}
log "many connections: $MANY_CONNS for ${DURATION}s (delivery on)"
start_sim many "${SIM_ARGS[@]}"
q=$(new_sqlite many)
start_relay many "$q"
e2e_point many sqlite "$MANY_CONNS" "$q" "$RELAY_URL" "$RELAY_PID"
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=

# ---------------------------------------------------------------- 4d. the drop-in
# CleverTap's own API served by freshtap: 1000 CRM-sized records (~1.5 MB) per request, each
# answered after the commit with CleverTap's answer; then the queue drains to the simulator.
UPLOAD_CONNS=${BENCH_UPLOAD_CONNECTIONS:-4}
log "drop-in /1/upload: 1000 records a request, $UPLOAD_CONNS connections"
start_sim upload "${SIM_ARGS[@]}"
q=$(new_sqlite upload)
start_relay upload "$q"
note_command "BENCH_TAG=<unique> wrk -t1 -c$UPLOAD_CONNS -d${DURATION}s --timeout 20s -s bench/upload.lua http://127.0.0.1:PORT"
started=$(date +%s.%N)
BENCH_TAG="up$$" wrk -t1 -c"$UPLOAD_CONNS" -d"${DURATION}s" --timeout 20s -s "$ROOT/bench/upload.lua" \
    "$RELAY_URL" >"$WORK/wrk.upload.out" 2>&1 || true
w=$(grep '^BENCH_JSON ' "$WORK/wrk.upload.out" | tail -n 1 | cut -d' ' -f2- || true)
[ -n "$w" ] || { cat "$WORK/wrk.upload.out" >&2; w='{"requests":0,"rps":0,"failed":true}'; }
hwm=$(hwm_kb "$RELAY_PID")
drain=$(wait_drained "$RELAY_URL")
total=$(python3 -c "import time; print(round(time.time()-$started, 3))")
sim=$(sim_stats); rows=$(admin_rows "$RELAY_URL")
accepted=$(jget "$sim" records_accepted); profiles=$(jget "$sim" profiles)
answered=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("records_processed", 0))' "$w")
ok=0
# Every record answered as processed reached CleverTap once (records in flight when wrk stopped
# were committed too: at least the answered ones, each identity once).
[ "$answered" -gt 0 ] && [ "$accepted" -ge "$answered" ] && [ "$profiles" = "$accepted" ] && [ "$(jget "$rows" rows.dead)" = 0 ] && ok=1
check "drop-in: every record answered processed delivered once" "$ok" "records answered processed: $answered; simulator records accepted: $accepted, distinct identities: $profiles; dead rows: $(jget "$rows" rows.dead)"
emit upload "{\"connections\":$UPLOAD_CONNS,\"rss_peak_kb\":$hwm,\"drain_after_load_s\":$drain,\"delivered\":$accepted,\"delivered_per_s\":$(python3 -c "print(round($accepted/$total,1))")}" "$w"
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=

# ---------------------------------------------------------------- 5. idle end-to-end latency
log "idle latency, $LATENCY_COUNT sequential webhooks"
start_sim latency "${SIM_ARGS[@]}"
q=$(new_sqlite latency)
start_relay latency "$q"
note_command "$EX/bench_latency <relay> <simulator> <token> $LATENCY_COUNT <tag>"
if lat=$("$EX/bench_latency" "$RELAY_URL" "$SIM_URL" "$TOKEN" "$LATENCY_COUNT" "lat$$"); then
    emit latency "{\"connections\":1}" "$lat"
    rows=$(admin_rows "$RELAY_URL"); ok=0
    [ "$(jget "$rows" rows.delivered)" = "$LATENCY_COUNT" ] && [ "$(jget "$(sim_stats)" records_accepted)" = "$LATENCY_COUNT" ] && ok=1
    check "latency: every webhook delivered once" "$ok" "sent: $LATENCY_COUNT; rows delivered: $(jget "$rows" rows.delivered); simulator records accepted: $(jget "$(sim_stats)" records_accepted)"
else
    check "latency: every webhook delivered" 0 "bench_latency failed"
fi
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=

# ---------------------------------------------------------------- 6. overload
OVERLOAD_CONNS=${BENCH_OVERLOAD_CONNECTIONS:-512}
# A waiting room of 64 KiB (about ten webhooks): with the default 16 MiB every one of these
# connections would wait its turn and none be shed, which is what the many-connections
# scenario shows; this one is about shedding.
log "overload: $OVERLOAD_CONNS connections for ${OVERLOAD_SECS}s, max_concurrent_requests=64, max_waiting_bytes=65536"
start_sim overload "${SIM_ARGS[@]}"
q=$(new_sqlite overload)
start_relay overload "$q" FRESHTAP__SERVER__MAX_CONCURRENT_REQUESTS=64 FRESHTAP__SERVER__MAX_WAITING_BYTES=65536
(
    # RSS every second while overloaded: bounded means flat, not climbing.
    while kill -0 "$RELAY_PID" 2>/dev/null; do rss_kb "$RELAY_PID"; sleep 1; done
) >"$WORK/overload.rss" &
sampler=$!; PIDS+=("$sampler")
w=$(run_wrk "$OVERLOAD_CONNS" "$OVERLOAD_SECS" "$RELAY_URL" over)
hwm=$(hwm_kb "$RELAY_PID")
stop "$sampler"
samples=$(paste -sd, "$WORK/overload.rss")
drain=$(wait_drained "$RELAY_URL")
verify "overload: every 202 delivered exactly once" "$q" "$RELAY_URL" 1 over
emit overload "{\"connections\":$OVERLOAD_CONNS,\"max_concurrent_requests\":64,\"max_waiting_bytes\":65536,\"rss_peak_kb\":$hwm,\"rss_samples_kb\":[${samples%,}],\"drain_after_load_s\":$drain}" "$w"
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=

# ---------------------------------------------------------------- 7. backlog
log "backlog: accumulating $BACKLOG pending rows with delivery disabled"
BACKLOG_QUEUE=$(new_sqlite backlog)
start_relay backlog-fill "$BACKLOG_QUEUE" FRESHTAP__DELIVERY__ENABLED=false
fill_started=$(date +%s.%N)
note_command "BENCH_TAG=<unique> wrk -t2 -c$MAX_CONN -d<until $BACKLOG rows> --timeout 10s -s bench/webhook.lua http://127.0.0.1:PORT/webhooks/contacts"
BENCH_TAG="fill$$" BENCH_TOKEN=$TOKEN BENCH_IDS_FILE="$WORK/ids.fill" wrk -t2 -c"$MAX_CONN" -d600s --timeout 10s \
    -s "$ROOT/bench/webhook.lua" "$RELAY_URL/webhooks/contacts" >"$WORK/fill.out" 2>&1 &
filler=$!; PIDS+=("$filler")
while :; do
    pending=$(jget "$(admin_rows "$RELAY_URL")" rows.pending)
    [ "$pending" -ge "$BACKLOG" ] && break
    kill -0 "$filler" 2>/dev/null || { log "the filling load stopped early"; break; }
    sleep 0.5
done
kill -INT "$filler" 2>/dev/null || true   # wrk reports (and writes the ids) on SIGINT
for _ in $(seq 1 100); do kill -0 "$filler" 2>/dev/null || break; sleep 0.1; done
stop "$filler"
fill_secs=$(python3 -c "import time; print(round(time.time()-$fill_started, 3))")
fill_rows=$(jget "$(admin_rows "$RELAY_URL")" rows.pending)
# Intake alone on the full queue (delivery still disabled): the reference for "while draining".
w_alone=$(run_wrk "$MAX_CONN" "$DURATION" "$RELAY_URL" alone)
rows=$(admin_rows "$RELAY_URL")
backlog_rows=$(jget "$rows" rows.pending)
stop "$RELAY_PID"
log "backlog: $backlog_rows rows; restarting with delivery enabled"
start_sim backlog "${SIM_ARGS[@]}"
drain_started=$(date +%s.%N)
start_relay backlog-drain "$BACKLOG_QUEUE"
w_drain=$(run_wrk "$MAX_CONN" "$DURATION" "$RELAY_URL" during)
during=$(jget "$(sim_stats)" records_accepted)
during_secs=$(python3 -c "import time; print(round(time.time()-$drain_started, 3))")
drain=$(wait_drained "$RELAY_URL")
drain_total=$(python3 -c "import time; print(round(time.time()-$drain_started, 3))")
hwm=$(hwm_kb "$RELAY_PID")
expected=$(jget "$(admin_rows "$RELAY_URL")" rows.delivered)
verify "backlog: every 202 delivered exactly once" "$BACKLOG_QUEUE" "$RELAY_URL" 1 fill alone during
emit backlog "{\"rows\":$backlog_rows,\"fill_s\":$fill_secs,\"fill_rows_per_s\":$(python3 -c "print(round($fill_rows/$fill_secs,1))"),\"connections\":$MAX_CONN,\"intake_alone\":$w_alone,\"intake_while_draining\":$w_drain,\"delivered_during_intake\":$during,\"delivered_during_intake_per_s\":$(python3 -c "print(round($during/$during_secs,1))"),\"drain_total_s\":$drain_total,\"drain_rows_per_s\":$(python3 -c "print(round($expected/$drain_total,1))"),\"rss_peak_kb\":$hwm,\"drain_timed_out\":$([ "$drain" = -1 ] && echo true || echo false)}"
stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=
rm -rf "$WORK/backlog"

# ---------------------------------------------------------------- 8. PostgreSQL
NGINX_REASON=""
if [ "$PG_ENABLED" = 1 ]; then
    # Bounded: a PostgreSQL queue that drains slowly is reported (check failed), not waited for.
    DRAIN_TIMEOUT=${BENCH_PG_DRAIN_TIMEOUT:-90}
    intake_scenario pg_intake postgres
    for c in $CONNECTIONS; do
        log "PostgreSQL end to end, $c connections"
        start_sim pg-e2e "${SIM_ARGS[@]}"
        q=$(new_pg "e$c")
        start_relay pg-e2e "$q"
        e2e_point pg_e2e postgres "$c" "$q" "$RELAY_URL" "$RELAY_PID"
        stop "$RELAY_PID"; stop "$SIM_PID"; SIM_URL=
    done
    if ! command -v nginx >/dev/null 2>&1; then
        log "installing nginx"
        apt_install nginx-light || apt_install nginx || true
    fi
    NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
    if [ -z "$NGINX" ]; then
        NGINX_REASON="nginx could not be installed"
        log "skipping two replicas: $NGINX_REASON"
    else
        two_replicas() { # SCENARIO DELIVERY(true/false)
            local scenario=$1 delivery=$2 q p1 p2 u1 u2 nport
            q=$(new_pg "$scenario")
            start_relay "$scenario-a" "$q" FRESHTAP__DELIVERY__ENABLED="$delivery"; p1=$RELAY_PID; u1=$RELAY_URL
            start_relay "$scenario-b" "$q" FRESHTAP__DELIVERY__ENABLED="$delivery"; p2=$RELAY_PID; u2=$RELAY_URL
            nport=$(free_port)
            mkdir -p "$WORK/nginx"
            cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream freshtap { server ${u1#http://}; server ${u2#http://}; keepalive 128; }
    server {
        listen 127.0.0.1:$nport;
        location / {
            proxy_pass http://freshtap;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
            note_command "nginx -p \$WORK/nginx -c \$WORK/nginx/nginx.conf   (two replicas upstream, one worker)"
            "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/out.log" 2>&1 &
            local npid=$!; PIDS+=("$npid")
            wait_http "http://127.0.0.1:$nport/readyz"
            if [ "$delivery" = true ]; then
                e2e_point "$scenario" postgres "$MAX_CONN" "$q" "http://127.0.0.1:$nport" "$p1" "$p2"
            else
                local w rows
                w=$(run_wrk "$MAX_CONN" "$DURATION" "http://127.0.0.1:$nport" "$scenario")
                rows=$(admin_rows "$u1")
                emit "$scenario" "{\"connections\":$MAX_CONN,\"queue\":\"postgres\",\"replicas\":2,\"rss_peak_kb\":$(python3 -c "print(max($(hwm_kb "$p1"),$(hwm_kb "$p2")))"),\"rows_pending\":$(jget "$rows" rows.pending)}" "$w"
                verify "$scenario: every 202 is a stored row" "$q" "$u1" 0 "$scenario"
            fi
            stop "$npid"; stop "$p1"; stop "$p2"
        }
        log "PostgreSQL, two replicas behind nginx: intake"
        two_replicas pg2_intake false
        log "PostgreSQL, two replicas behind nginx: end to end"
        start_sim pg2-e2e "${SIM_ARGS[@]}"
        two_replicas pg2_e2e true
        stop "$SIM_PID"; SIM_URL=
    fi
else
    log "skipping PostgreSQL: $PG_REASON"
fi

# ---------------------------------------------------------------- results
BENCH_SECS=$(($(date +%s) - BENCH_STARTED))
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
python3 - "$OUT/meta.json" <<EOF
import json, sys
meta = {
    "mode": "$MODE", "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "bench_seconds": $BENCH_SECS,
    "machine": {"nproc": $(nproc), "cpu_model": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$cpu"),
                "mem_total_mb": $((mem_kb / 1024)), "kernel": "$(uname -r)",
                "rustc": "$(rustc -V)", "wrk": "$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"},
    "git_commit": "$commit", "git_dirty": json.loads("$dirty"),
    "settings": {"duration_s": $DURATION, "connections": [${CONNECTIONS// /,}], "body_bytes": 615,
                 "backlog_rows": $BACKLOG, "latency_count": $LATENCY_COUNT,
                 "overload_s": $OVERLOAD_SECS, "overload_connections": $OVERLOAD_CONNS,
                 "log_level": "info"},
    "postgres": {"enabled": bool($PG_ENABLED), "skipped_reason": "$PG_REASON", "nginx_skipped_reason": "$NGINX_REASON"},
    "reproduce": "bench/run.sh" + (" --smoke" if "$MODE" == "smoke" else ""),
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF
python3 "$ROOT/bench/report.py" --meta "$OUT/meta.json" --measurements "$MEASUREMENTS" \
    --commands "$COMMANDS" --json "$OUT/latest.json" --markdown "$REPORT" \
    --analysis "$ROOT/bench/analysis.md"
rm -f "$OUT/meta.json" "$MEASUREMENTS"
log "done in ${BENCH_SECS}s: $OUT/latest.json, $REPORT"
