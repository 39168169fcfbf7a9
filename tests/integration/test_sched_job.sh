#!/bin/bash
# test_sched_job.sh -- `coffer config check`, `coffer job list|run|restore` with files and
# command jobs into two local repositories: retention per repository, hooks (order, env,
# on_error, timeout), limits (nice), run_on, the worst exit code, secrets never in argv,
# restore of the job's latest snapshot, and bad input (typo, bad cron, unknown job, missing
# secret file) with file:line:column messages.
. "$(dirname "$0")/lib.sh"
require_coffer

A=$WORK/repo-a
B=$WORK/repo-b
mkdir -p "$WORK/data/sub" "$WORK/out"
echo "first version" >"$WORK/data/file.txt"
echo "nested" >"$WORK/data/sub/n.txt"
printf '%s\n' "$COFFER_PASSWORD" >"$WORK/pw"
"$COFFER" -q -r "$A" init
"$COFFER" -q -r "$B" init
# from here on the jobs get the password only through the config
SAVED_PW=$COFFER_PASSWORD
unset COFFER_PASSWORD
export TEST_PW=$SAVED_PW

cat >"$WORK/coffer.yaml" <<EOF
include: ["conf.d/*.yaml"]
repositories:
  a: {url: "$A", password_file: pw}
  b: {url: "\${REPO_B}", password: "\${TEST_PW}"}
jobs:
  - name: files
    type: files
    paths: ["$WORK/data"]
    exclude: ["*.skip"]
    schedule: "15 3 * * *"
    timezone: Europe/Berlin
    tags: [nightly]
    repositories:
      - a
      - name: b
        retention: {keep_last: 1}
    retention: {days: 7}
    hooks:
      before:
        - "echo before \$COFFER_JOB >> $WORK/hooks.log"
      after:
        - "echo after \$COFFER_JOB_STATUS \$COFFER_JOB_EXIT_CODE >> $WORK/hooks.log"
EOF
mkdir -p "$WORK/conf.d"
cat >"$WORK/conf.d/cmd.yaml" <<EOF
jobs:
  - name: dump
    type: command
    command: ["sh", "-c", "echo dump-output; cut -d' ' -f19 /proc/\$\$\$\$/stat; sleep 2"]
    filename: dump.sql
    limits: {nice: 7, ionice: idle}
    repositories: [a]
  - name: elsewhere
    type: command
    command: "echo x"
    repositories: [a]
    run_on: [some-other-host]
EOF
export REPO_B=$B

step "config check: effective config, secrets masked"
"$COFFER" config check --config "$WORK/coffer.yaml" >"$WORK/check.out"
grep -q "keep_last: 1" "$WORK/check.out" || fail "config check output lacks the retention"
grep -q "dump.sql" "$WORK/check.out" || fail "config check output lacks the included job"
grep -q "$SAVED_PW" "$WORK/check.out" && fail "config check printed the password"
grep -q 'password: "\*\*\*"' "$WORK/check.out" || fail "password not shown masked"

step "job list: next run times"
"$COFFER" job list --config "$WORK/coffer.yaml" >"$WORK/list.out"
grep -E '^files +files +15 3 \* \* \* +Europe/Berlin +20[0-9-]+T0[12]:15:00Z +a,b' "$WORK/list.out" ||
    fail "job list: $(cat "$WORK/list.out")"
"$COFFER" --json job list --config "$WORK/coffer.yaml" | python3 -c '
import json, sys
jobs = {j["name"]: j for j in json.load(sys.stdin)}
assert jobs["files"]["next_run"].endswith(":15:00Z"), jobs
assert jobs["dump"]["next_run"] is None
assert jobs["elsewhere"]["runs_here"] is False
'

step "job run: two repositories, hooks, retention per repository"
echo skipped >"$WORK/data/x.skip"
"$COFFER" --json job run files --config "$WORK/coffer.yaml" >"$WORK/run1.json"
python3 - "$WORK/run1.json" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if '"job_result"' in l][0]
assert r["status"] == "success" and r["exit_code"] == 0, r
assert [t["repository"] for t in r["repositories"]] == ["a", "b"], r
assert all(len(t["snapshot"]) == 64 and t["bytes_added"] > 0 for t in r["repositories"]), r
PY
echo "second version" >"$WORK/data/file.txt"
"$COFFER" job run files --config "$WORK/coffer.yaml" >"$WORK/run2.out"
grep -q "job files: success (exit 0)" "$WORK/run2.out" || fail "second run: $(cat "$WORK/run2.out")"
export COFFER_PASSWORD=$SAVED_PW
assert_eq "$("$COFFER" -r "$A" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 "snapshots in a"
assert_eq "$("$COFFER" -r "$B" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 "snapshots in b (keep_last 1)"
"$COFFER" -r "$A" --json snapshots | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert all(x["job"] == "files" and x["tags"] == ["nightly"] for x in s), s
'
"$COFFER" -r "$A" ls latest | grep -q 'x.skip' && fail "exclude was not applied"
unset COFFER_PASSWORD
assert_eq "$(cat "$WORK/hooks.log")" "before files
after success 0
before files
after success 0" "hook log"

step "job restore: the job's latest snapshot"
"$COFFER" job restore files --config "$WORK/coffer.yaml" --target "$WORK/out"
assert_eq "$(cat "$WORK/out/data/file.txt")" "second version" "restored file"
assert_eq "$(cat "$WORK/out/data/sub/n.txt")" "nested" "restored nested file"
assert_exit 1 "$COFFER" job restore files --config "$WORK/coffer.yaml"

step "command job: limits, no secret in any argv while it runs"
"$COFFER" job run dump --config "$WORK/coffer.yaml" >"$WORK/dump.out" 2>&1 &
DPID=$!
sleep 1
leaks=0
for f in /proc/[0-9]*/cmdline; do
    if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF "$SAVED_PW"; then leaks=1; fi
done
wait $DPID || fail "dump job failed: $(cat "$WORK/dump.out")"
[ $leaks -eq 0 ] || fail "the repository password appeared in a command line"
"$COFFER" job restore dump --config "$WORK/coffer.yaml" --target "$WORK/out-dump"
assert_eq "$(head -1 "$WORK/out-dump/dump.sql")" "dump-output" "command output"
assert_eq "$(sed -n 2p "$WORK/out-dump/dump.sql" | tr -d ' ')" "7" "nice value of the job"

step "run_on: another host's job is skipped, --ignore-run-on runs it"
"$COFFER" job run elsewhere --config "$WORK/coffer.yaml" | grep -q "skipped" || fail "run_on ignored"
"$COFFER" job run elsewhere --config "$WORK/coffer.yaml" --ignore-run-on -q

step "hooks: on_error fail stops the job, continue does not, timeouts kill"
cat >"$WORK/hooks.yaml" <<EOF
repositories:
  a: {url: "$A", password_file: pw}
  missing: {url: "$WORK/no-such-repo", password_file: pw}
jobs:
  - name: hookfail
    type: files
    paths: ["$WORK/data"]
    repositories: [a]
    hooks:
      before: [{command: "exit 3", on_error: fail}]
      after: ["echo after-ran \$COFFER_JOB_STATUS >> $WORK/hooks2.log"]
  - name: hookcont
    type: files
    paths: ["$WORK/data"]
    repositories: [a]
    hooks:
      before: [{command: "exit 3", on_error: continue}]
  - name: hooktimeout
    type: files
    paths: ["$WORK/data"]
    repositories: [a]
    hooks:
      before: [{command: "sleep 60", timeout: 1s}]
  - name: worst
    type: files
    paths: ["$WORK/data"]
    repositories: [missing, a]
EOF
cp "$WORK/pw" "$WORK/pw.bak"
assert_exit 1 "$COFFER" job run hookfail --config "$WORK/hooks.yaml"
grep -q "after-ran failed" "$WORK/hooks2.log" || fail "after hook did not run after a failed before hook"
assert_exit 0 "$COFFER" job run hookcont --config "$WORK/hooks.yaml"
t0=$(date +%s)
assert_exit 1 "$COFFER" job run hooktimeout --config "$WORK/hooks.yaml"
[ $(($(date +%s) - t0)) -lt 20 ] || fail "the hook timeout did not stop the hook"
step "worst exit code: a missing repository (10) beats a good one, the good one still gets its snapshot"
n_before=$(COFFER_PASSWORD=$SAVED_PW "$COFFER" -r "$A" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_exit 10 "$COFFER" job run worst --config "$WORK/hooks.yaml"
n_after=$(COFFER_PASSWORD=$SAVED_PW "$COFFER" -r "$A" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$n_after" "$((n_before + 1))" "snapshots after the mixed run"

step "bad input"
cfg_bad() { # NAME TEXT -> writes $WORK/bad-NAME.yaml
    printf '%s\n' "$2" >"$WORK/bad-$1.yaml"
}
cfg_bad typo "repositories: {a: {url: /x, password: p}}
jobs:
  - name: j
    type: files
    paths: [/x]
    repositorys: [a]"
"$COFFER" config check --config "$WORK/bad-typo.yaml" 2>"$WORK/err" && fail "typo accepted"
grep -q "bad-typo.yaml:6:5: unknown key \"repositorys\" in job (did you mean \"repositories\"?)" "$WORK/err" ||
    fail "typo message: $(cat "$WORK/err")"
cfg_bad cron "repositories: {a: {url: /x, password: p}}
jobs:
  - {name: j, type: files, paths: [/x], repositories: [a], schedule: \"0 25 * * *\"}"
assert_exit 1 "$COFFER" job run j --config "$WORK/bad-cron.yaml"
"$COFFER" job list --config "$WORK/bad-cron.yaml" 2>"$WORK/err" && fail "bad cron accepted"
grep -q "bad-cron.yaml:3:70: schedule: cron \"0 25 \* \* \*\": hour field: \"25\"" "$WORK/err" ||
    fail "bad cron message: $(cat "$WORK/err")"
"$COFFER" job run nosuchjob --config "$WORK/coffer.yaml" 2>"$WORK/err" && fail "unknown job accepted"
grep -q 'job "nosuchjob" is not defined in .*coffer.yaml (jobs: files, dump, elsewhere)' "$WORK/err" ||
    grep -q 'job "nosuchjob" is not defined' "$WORK/err" || fail "unknown job message: $(cat "$WORK/err")"
cfg_bad secret "repositories: {a: {url: /x, password_file: /nonexistent/secret}}"
"$COFFER" config check --config "$WORK/bad-secret.yaml" 2>"$WORK/err" && fail "missing secret accepted"
grep -q "bad-secret.yaml:1:44: password_file: cannot read secret file /nonexistent/secret" "$WORK/err" ||
    fail "missing secret message: $(cat "$WORK/err")"
assert_exit 2 "$COFFER" job run
assert_exit 2 "$COFFER" job frobnicate --config "$WORK/coffer.yaml"
"$COFFER" config check --config "$WORK/none.yaml" 2>"$WORK/err" && fail "missing config accepted"
grep -q "cannot read config file" "$WORK/err" || fail "missing config message: $(cat "$WORK/err")"
step "fan_out: copy -- back up once, copy the snapshot into the other repository"
cat >"$WORK/fan.yaml" <<EOF
repositories:
  a: {url: "$A", password_file: $WORK/pw}
  c: {url: "$WORK/repo-c", password: "\${TEST_PW}"}
jobs:
  - {name: once, type: command, command: ["sh", "-c", "echo dumped-once"], filename: once.txt, repositories: [a, c], fan_out: copy}
EOF
COFFER_PASSWORD=$TEST_PW "$COFFER" -q -r "$WORK/repo-c" init
"$COFFER" --json job run once --config "$WORK/fan.yaml" >"$WORK/fan.json" 2>"$WORK/err" || fail "fan_out copy job: $(cat "$WORK/err")"
python3 - "$WORK/fan.json" <<'PY' || fail "fan_out result: $(cat "$WORK/fan.json")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if '"job_result"' in l][-1]
a, c = r["repositories"]
assert a["status"] != "copied" and c["status"] == "copied", r
assert a["snapshot"] and c["snapshot"] and a["snapshot"] != c["snapshot"], r
PY
orig=$(COFFER_PASSWORD=$TEST_PW "$COFFER" -r "$WORK/repo-c" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["original"])')
a_snap=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "job_result" in l][-1]["repositories"][0]["snapshot"])' "$WORK/fan.json")
assert_eq "$orig" "$a_snap" "the copy's original is the first repository's snapshot"
assert_eq "$(COFFER_PASSWORD=$TEST_PW "$COFFER" -r "$WORK/repo-c" dump latest /once.txt)" "dumped-once" "copied content"

step "storage options and bandwidth limits reach the children as -o"
cat >"$WORK/opts.yaml" <<EOF
repositories:
  a: {url: "$A", password_file: $WORK/pw, options: {limit-download: "100000"}}
  bad: {url: "$A", password_file: $WORK/pw, options: {local.nope: "1"}}
jobs:
  - {name: limited, type: files, paths: ["$WORK/data"], repositories: [a], limits: {upload: 50000}}
  - {name: badopt, type: files, paths: ["$WORK/data"], repositories: [bad]}
EOF
"$COFFER" job run limited --config "$WORK/opts.yaml" >/dev/null 2>"$WORK/err" || fail "job with options: $(cat "$WORK/err")"
rc=0
"$COFFER" job run badopt --config "$WORK/opts.yaml" >/dev/null 2>"$WORK/err" || rc=$?
assert_eq "$rc" 1 "exit of a job whose repository has an unknown option"
grep -q "local.nope" "$WORK/err" || fail "the unknown option is not named: $(cat "$WORK/err")"
"$COFFER" config check --config "$WORK/opts.yaml" | grep -q 'limit-download' || fail "config check does not show the options"
echo "all job tests passed"
