#!/bin/bash
# test_sched_metrics.sh -- metrics of one-shot `coffer job run` (the CronJob case): a
# node-exporter textfile (atomic, valid for promtool) and a push to a real Prometheus
# Pushgateway (Debian's prometheus-pushgateway on 127.0.0.1:48020); after a failed run both
# still carry the last success time, so the missed-backup alert keeps working.
. "$(dirname "$0")/lib.sh"
require_coffer
command -v promtool >/dev/null || fail "promtool is missing (Debian package prometheus; scripts/install-deps.sh test)"
command -v prometheus-pushgateway >/dev/null ||
    fail "prometheus-pushgateway is missing (scripts/install-deps.sh test)"
PGW_PORT=48020

prometheus-pushgateway --web.listen-address=127.0.0.1:$PGW_PORT \
    --persistence.file="$WORK/pgw.data" >"$WORK/pgw.log" 2>&1 &
track_pid $!
for i in $(seq 100); do
    curl -sf "http://127.0.0.1:$PGW_PORT/-/ready" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PGW_PORT/-/ready" >/dev/null || fail "pushgateway did not start: $(cat "$WORK/pgw.log")"

"$COFFER" -q -r "$WORK/repo" init
mkdir "$WORK/data" "$WORK/textfiles"
echo hello >"$WORK/data/f"
cat >"$WORK/c.yaml" <<EOF
repositories:
  r: {url: "$WORK/repo", password: "\${COFFER_PASSWORD}"}
jobs:
  - {name: nightly, type: files, paths: ["\${DATA_DIR}"], repositories: [r]}
server:
  textfile_dir: "$WORK/textfiles"
  pushgateway: "http://127.0.0.1:$PGW_PORT"
EOF

step "a good run writes the textfile and pushes"
DATA_DIR=$WORK/data "$COFFER" job run nightly --config "$WORK/c.yaml" -q
TF=$WORK/textfiles/coffer-nightly.prom
[ -f "$TF" ] || fail "no textfile written"
promtool check metrics <"$TF" || fail "promtool rejects the textfile"
ok_time=$(awk '/^coffer_job_last_success_timestamp_seconds\{job="nightly"\}/ {print $2}' "$TF")
[ -n "$ok_time" ] && [ "$ok_time" -gt 1700000000 ] || fail "no last success in the textfile"
grep -q '^coffer_job_runs_total{job="nightly",result="success"} 1$' "$TF" || fail "runs_total"
grep -q '^coffer_backup_bytes_added_total{job="nightly",repository="r"} [1-9]' "$TF" ||
    fail "bytes added"
ls "$WORK/textfiles" | grep -q tmp && fail "a temporary file was left behind"
curl -sf "http://127.0.0.1:$PGW_PORT/metrics" >"$WORK/pgw1.txt"
# the Pushgateway prints floats (1.7e+09): compare numerically
pushed_ok() {
    awk '/^coffer_job_last_success_timestamp_seconds\{.*job="nightly".*\}/ {printf "%d\n", $2}' "$1"
}
assert_eq "$(pushed_ok "$WORK/pgw1.txt")" "$ok_time" "pushed last success"
grep -q '^coffer_job_last_exit_code{.*job="nightly".*} 0$' "$WORK/pgw1.txt" || fail "pushed exit code"

step "a failed run keeps the last success time in both"
sleep 1
assert_exit 1 env DATA_DIR="$WORK/gone" "$COFFER" job run nightly --config "$WORK/c.yaml" -q
promtool check metrics <"$TF" || fail "promtool rejects the textfile after a failure"
grep -q "^coffer_job_last_success_timestamp_seconds{job=\"nightly\"} $ok_time\$" "$TF" ||
    fail "the textfile lost the last success: $(cat "$TF")"
grep -q '^coffer_job_last_exit_code{job="nightly"} 1$' "$TF" || fail "exit code not 1"
curl -sf "http://127.0.0.1:$PGW_PORT/metrics" >"$WORK/pgw2.txt"
grep -q '^coffer_job_last_exit_code{.*job="nightly".*} 1$' "$WORK/pgw2.txt" || fail "pushed exit code 1"
assert_eq "$(pushed_ok "$WORK/pgw2.txt")" "$ok_time" "pushed last success after a failure"

step "an unreachable Pushgateway only warns"
sed -i "s|127.0.0.1:$PGW_PORT|127.0.0.1:48029|" "$WORK/c.yaml"
DATA_DIR=$WORK/data "$COFFER" job run nightly --config "$WORK/c.yaml" >/dev/null 2>"$WORK/err" ||
    fail "the push failure changed the result"
grep -q "metrics push: cannot push metrics" "$WORK/err" || fail "no warning: $(cat "$WORK/err")"
echo "all metrics tests passed"
