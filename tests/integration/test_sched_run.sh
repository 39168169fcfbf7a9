#!/bin/bash
# test_sched_run.sh -- the `coffer run` daemon for real: a `* * * * *` job into a local
# repository for about a minute (snapshots appear, /metrics passes promtool and counts the
# runs, /healthz answers), SIGHUP with a broken config keeps the old one, SIGHUP with a good
# one reloads, SIGTERM stops cleanly and the state file records the run; a restart after a
# missed slot runs once at start; SIGTERM during a running job interrupts it (exit 130, no
# snapshot) and the daemon exits; a periodic copy task (the sidecar sync) from a to b.
# Ports 48030-48039.
. "$(dirname "$0")/lib.sh"
require_coffer
command -v promtool >/dev/null || fail "promtool is missing (Debian package prometheus; scripts/install-deps.sh test)"
PORT=48030

count() { # REPO -> number of snapshots
    "$COFFER" -r "$1" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
wait_for() { # SECONDS CMD... : poll until CMD succeeds
    local limit=$1 i
    shift
    for i in $(seq $((limit * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
stop_daemon() { # PID: SIGTERM, wait, fail unless it exits 0
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    [ $rc -eq 0 ] || fail "coffer run exited $rc after SIGTERM"
}
has_snapshots() { [ "$(count "$1")" -ge "$2" ]; }
log_has() { grep -q "$2" "$1"; }

"$COFFER" -q -r "$WORK/a" init
"$COFFER" -q -r "$WORK/b" init
mkdir "$WORK/data"
echo one >"$WORK/data/f"
write_cfg() { # SCHEDULE
    cat >"$WORK/c.yaml" <<EOF
repositories:
  a: {url: "$WORK/a", password: "\${COFFER_PASSWORD}"}
  b: {url: "$WORK/b", password: "\${COFFER_PASSWORD}"}
jobs:
  - {name: minutely, type: files, paths: ["$WORK/data"], repositories: [a], schedule: "$1"}
server:
  listen: "127.0.0.1:$PORT"
  state_file: "$WORK/state.json"
EOF
    printf 'copy:\n  - {name: sync, from: a, to: b, every: 1m}\n' >>"$WORK/c.yaml"
}
write_cfg "* * * * *"

step "a real minute of coffer run"
"$COFFER" run --config "$WORK/c.yaml" >"$WORK/run.log" 2>&1 &
D=$!
track_pid $D
wait_for 10 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null || fail "no /healthz: $(cat "$WORK/run.log")"
assert_eq "$(curl -sf "http://127.0.0.1:$PORT/healthz")" "ok" "healthz"
wait_for 75 has_snapshots "$WORK/a" 1 || fail "no snapshot within 75 s: $(cat "$WORK/run.log")"
wait_for 20 log_has "$WORK/run.log" "job minutely: success" || fail "no success logged"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m1.txt"
promtool check metrics <"$WORK/m1.txt" || fail "promtool rejects /metrics"
grep -q '^coffer_job_runs_total{job="minutely",result="success"} [1-9]' "$WORK/m1.txt" ||
    fail "runs_total: $(grep coffer_job "$WORK/m1.txt")"
grep -q '^coffer_job_next_run_timestamp_seconds{job="minutely"} [0-9]*[0-9]$' "$WORK/m1.txt" || fail "next run"
grep -q '^coffer_repository_size_bytes{repository="a"} [1-9]' "$WORK/m1.txt" || fail "repository size"
grep -q '^coffer_up 1$' "$WORK/m1.txt" || fail "coffer_up"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")" 404 "unknown path"
wait_for 60 has_snapshots "$WORK/b" 1 || fail "the copy task copied nothing: $(cat "$WORK/run.log")"
# the copy is the same snapshot (original = a's snapshot id), not a second backup
sid_a=$("$COFFER" -r "$WORK/a" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
orig_b=$("$COFFER" -r "$WORK/b" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("original",""))')
assert_eq "$orig_b" "$sid_a" "the copy task's snapshot in b is a copy of a's"

step "SIGHUP with a broken config keeps the old one; a good one reloads"
cp "$WORK/c.yaml" "$WORK/c.good"
sed -i 's/state_file:/stat_file:/' "$WORK/c.yaml"
kill -HUP $D
wait_for 10 log_has "$WORK/run.log" "keeping the old one" || fail "bad reload not reported"
grep -q "c.yaml:[0-9]*:[0-9]*: unknown key \"stat_file\" in server (did you mean \"state_file\"?)" "$WORK/run.log" || fail "reload error lacks the location"
kill -0 $D || fail "the daemon died on a bad reload"
cp "$WORK/c.good" "$WORK/c.yaml"
kill -HUP $D
wait_for 10 log_has "$WORK/run.log" "configuration reloaded" || fail "good reload not reported"
assert_eq "$(curl -sf "http://127.0.0.1:$PORT/healthz")" "ok" "healthz after reload"

step "SIGTERM stops cleanly and saves the state"
t0=$(date +%s)
stop_daemon $D
[ $(($(date +%s) - t0)) -lt 30 ] || fail "SIGTERM took too long"
grep -q "coffer run: stopped" "$WORK/run.log" || fail "no clean stop logged"
python3 - "$WORK/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
j = s["jobs"]["minutely"]
assert j["last_run"] > 1700000000 and j["last_success"] >= j["last_run"], s
PY

step "a restart after a missed slot runs once at start"
python3 - "$WORK/state.json" <<'PY'
import json, sys, time
p = sys.argv[1]
s = json.load(open(p))
s["jobs"]["minutely"]["last_run"] = int(time.time()) - 3600
json.dump(s, open(p, "w"))
PY
# hourly, last run an hour ago: the slot in between was missed, and the next one is up to an
# hour away, so only the missed-run policy can make it run now
write_cfg "$(date -u -d '-30 min' +%M) * * * *"
n0=$(count "$WORK/a")
"$COFFER" run --config "$WORK/c.yaml" >"$WORK/run2.log" 2>&1 &
D=$!
track_pid $D
wait_for 30 has_snapshots "$WORK/a" $((n0 + 1)) || fail "the missed run did not happen: $(cat "$WORK/run2.log")"
grep -q "job minutely missed a run while coffer was down: running it now" "$WORK/run2.log" ||
    fail "missed run not logged"
stop_daemon $D

step "SIGTERM during a running job interrupts it (simulated clock)"
cat >"$WORK/slow.yaml" <<EOF
repositories:
  a: {url: "$WORK/a", password: "\${COFFER_PASSWORD}"}
jobs:
  - {name: slow, type: command, command: ["sleep", "120"], repositories: [a], schedule: "* * * * *"}
EOF
n0=$(count "$WORK/a")
now=$(date +%s)
COFFER_SCHED_FAKE_START=$((now - now % 60 + 59)) COFFER_SCHED_SPEED=1 \
    "$COFFER" run --config "$WORK/slow.yaml" >"$WORK/run3.log" 2>&1 &
D=$!
track_pid $D
wait_for 20 log_has "$WORK/run3.log" "starting job slow" || fail "slow job did not start: $(cat "$WORK/run3.log")"
sleep 2
t0=$(date +%s)
stop_daemon $D
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the running job was not interrupted"
grep -q "job slow: interrupted (exit 130)" "$WORK/run3.log" || fail "interruption not logged: $(cat "$WORK/run3.log")"
assert_eq "$(count "$WORK/a")" "$n0" "snapshots after an interrupted run"

step "bad config: coffer run refuses to start"
printf 'server: {listen: "127.0.0.1:notaport"}\n' >"$WORK/bad.yaml"
assert_exit 1 "$COFFER" run --config "$WORK/bad.yaml"
echo "all daemon tests passed"
