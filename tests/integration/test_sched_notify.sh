#!/bin/bash
# test_sched_notify.sh -- notifications of `coffer job run` against real sinks on 127.0.0.1:
# an HTTP webhook sink (JSON body, custom header, Slack-style text, retries on 500) and an
# SMTP sink with AUTH (aiosmtpd); an unreachable SMTP server and a wrong SMTP password only
# give warnings: the job's result and exit code stay what the backup made them.
# Ports 48010-48019 (the sched helper's range).
. "$(dirname "$0")/lib.sh"
require_coffer
PY=/usr/bin/python3
[ -x $PY ] || skip "/usr/bin/python3 is missing (scripts/install-deps.sh test)"
$PY -c 'import aiosmtpd' 2>/dev/null || fail "python3-aiosmtpd is missing (scripts/install-deps.sh test)"
SERVERS=$ROOT/tests/servers
HOOK_PORT=48010
SMTP_PORT=48011
DEAD_PORT=48019

wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    fail "nothing listens on port $1"
}

$PY "$SERVERS/webhook_sink.py" $HOOK_PORT "$WORK/hooks.jsonl" &
track_pid $!
$PY "$SERVERS/smtp_sink.py" $SMTP_PORT "$WORK/maildir" alice s3cret >"$WORK/smtp.log" 2>&1 &
track_pid $!
wait_port $HOOK_PORT
wait_port $SMTP_PORT

"$COFFER" -q -r "$WORK/repo" init
mkdir "$WORK/data"
echo hello >"$WORK/data/f"
printf 's3cret\n' >"$WORK/smtp-pw"
printf 'wrong\n' >"$WORK/smtp-bad-pw"
export HOOK_TOKEN=token-$RANDOM-secret
export COFFER_NOTIFY_BACKOFF_MS=50
cat >"$WORK/c.yaml" <<EOF
repositories:
  r: {url: "$WORK/repo", password: "\${COFFER_PASSWORD}"}
jobs:
  - {name: good, type: files, paths: ["$WORK/data"], repositories: [r]}
  - {name: bad, type: command, command: ["sh", "-c", "echo partial; exit 4"], repositories: [r]}
notifications:
  - name: hook
    type: webhook
    url: "http://127.0.0.1:$HOOK_PORT/hook"
    level: info
    headers: {Authorization: "Bearer \${HOOK_TOKEN}", X-Source: coffer}
  - name: flaky
    type: webhook
    url: "http://127.0.0.1:$HOOK_PORT/status/500"
    level: info
    retries: 2
    jobs: [good]
  - name: errors-only
    type: webhook
    url: "http://127.0.0.1:$HOOK_PORT/errors"
    level: error
  - name: mail
    type: email
    smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
    username: alice
    password_file: smtp-pw
    from: backup@example.test
    to: [ops@example.test, dba@example.test]
    subject: "[backup]"
    level: info
  - name: badauth
    type: email
    smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
    username: alice
    password_file: smtp-bad-pw
    from: backup@example.test
    to: [ops@example.test]
    retries: 0
    level: info
  - name: unreachable
    type: email
    smtp_url: "smtp://127.0.0.1:$DEAD_PORT"
    from: backup@example.test
    to: [ops@example.test]
    retries: 1
    timeout: 5s
    level: info
EOF

step "a good run: every reachable sink gets it; failing sinks only warn"
"$COFFER" job run good --config "$WORK/c.yaml" >"$WORK/good.out" 2>"$WORK/good.err" ||
    fail "job failed because of notifications: $(cat "$WORK/good.err")"
grep -q "notification unreachable for job good was not delivered" "$WORK/good.err" ||
    fail "no warning for the unreachable SMTP server: $(cat "$WORK/good.err")"
grep -q "notification badauth for job good was not delivered" "$WORK/good.err" ||
    fail "no warning for the wrong SMTP password"
grep -q "notification flaky for job good was not delivered.*HTTP 500" "$WORK/good.err" ||
    fail "no warning for the failing webhook"
grep -q "s3cret\|wrong\|$HOOK_TOKEN" "$WORK/good.err" && fail "a secret reached the log"
grep -q "job good: success (exit 0)" "$WORK/good.out" || fail "result: $(cat "$WORK/good.out")"

$PY - "$WORK/hooks.jsonl" "$HOOK_TOKEN" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
hook = [r for r in reqs if r["path"] == "/hook"]
assert len(hook) == 1, reqs
h = hook[0]
assert h["method"] == "POST"
assert h["headers"]["Authorization"] == "Bearer " + sys.argv[2], h["headers"]
assert h["headers"]["X-Source"] == "coffer"
assert h["headers"]["Content-Type"] == "application/json"
b = json.loads(h["body"])
assert b["job"] == "good" and b["status"] == "success" and b["exit_code"] == 0, b
assert b["repository"] == "r" and len(b["snapshot"]) == 64, b
assert b["bytes_added"] > 0 and b["duration_seconds"] > 0 and b["error"] is None, b
assert b["text"].startswith("coffer: job good succeeded"), b["text"]
assert b["repositories"][0]["status"] == "complete"
flaky = [r for r in reqs if r["path"] == "/status/500"]
assert len(flaky) == 3, "1 attempt + 2 retries expected, got %d" % len(flaky)
assert not [r for r in reqs if r["path"] == "/errors"], "level error got a success"
PY

msgs=("$WORK"/maildir/new/*)
[ ${#msgs[@]} -eq 1 ] && [ -f "${msgs[0]}" ] || fail "expected one delivered mail, got ${#msgs[@]}"
grep -q "^Subject: \[backup\] job good: success" "${msgs[0]}" || fail "mail subject: $(head -20 "${msgs[0]}")"
grep -q "^X-RcptTo: ops@example.test, dba@example.test" "${msgs[0]}" || fail "mail recipients"
grep -q "repository r: exit 0, status complete" "${msgs[0]}" || fail "mail body"

step "a failed run: error-level sinks get it with the error; the exit code is the job's"
rm -f "$WORK"/maildir/new/*
assert_exit 1 "$COFFER" job run bad --config "$WORK/c.yaml"
$PY - "$WORK/hooks.jsonl" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
err = [r for r in reqs if r["path"] == "/errors"]
assert len(err) == 1, reqs
b = json.loads(err[0]["body"])
assert b["job"] == "bad" and b["status"] == "failed" and b["exit_code"] == 1, b
assert "exited with status 4" in b["error"], b["error"]
assert "FAILED" in b["text"]
assert len([r for r in reqs if r["path"] == "/status/500"]) == 3, "jobs: filter ignored"
PY
ls "$WORK"/maildir/new/* >/dev/null 2>&1 || fail "no mail for the failed run"
grep -q "^Subject: \[backup\] job bad: failed" "$WORK"/maildir/new/* || fail "failed-run mail subject"
$PY - "$WORK"/maildir/new/* <<'PY'
import email, json, sys
for path in sys.argv[1:]:
    m = email.message_from_binary_file(open(path, "rb"))
    raw = open(path, "rb").read().split(b"\n")
    assert max(len(l) for l in raw) <= 998, "an SMTP line is too long"
    body = m.get_payload(decode=True).decode()
    assert "repository r: exit 1, status failed" in body, body
    j = json.loads(body.split("JSON: ", 1)[1])
    assert j["job"] == "bad" and "exited with status 4" in j["error"], j
PY
echo "all notification tests passed"
