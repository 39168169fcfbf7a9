#!/bin/bash
# sftp.sh -- backup and restore throughput over SFTP: coffer's sftp driver against restic's
# sftp backend (which runs the ssh client), both to one OpenSSH sshd on 127.0.0.1, in one run.
#
# Usage: bench/sftp.sh BUILD_DIR        (e.g. build-rel, a release build of coffer)
# Environment: BENCH_DIR (default /tmp/coffer-sftp-bench), PORT (47510), RUNS (1),
#   CORPUS_SRC (a directory of many small files; default the kernel's fs/ from the bench
#   corpus), CORPUS_BIG (a big file; default the first 256 MiB of big-day1.img).
# Writes a Markdown table on stdout: per tool and step, the median wall time, MB/s (of the
# corpus size) and peak RSS. Needs root for the sshd test user (tests/servers/sshd.sh).
#
# Invariants: both tools back up the same corpus copy into fresh repositories on the same
# server, with their default compression, over the same loopback; each restore goes to an
# empty directory and is compared with the source (diff -r) before its time counts.
set -euo pipefail

build=${1:?usage: bench/sftp.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=$(cd "$build" && pwd)/coffer
B=${BENCH_DIR:-/tmp/coffer-sftp-bench}
PORT=${PORT:-47510}
RUNS=${RUNS:-1}
CORPUS_SRC=${CORPUS_SRC:-/tmp/bench/corpus/src/fs}
CORPUS_BIG=${CORPUS_BIG:-/tmp/bench/corpus/big-day1.img}

[ -x "$coffer" ] || { echo "no coffer at $coffer" >&2; exit 2; }
command -v restic >/dev/null || { echo "restic is not installed (scripts/install-deps.sh bench)" >&2; exit 2; }
rm -rf "$B"
mkdir -p "$B/corpus"
cp -a "$CORPUS_SRC" "$B/corpus/src"
head -c $((256 << 20)) "$CORPUS_BIG" >"$B/corpus/big.img"
size=$(du -sb "$B/corpus" | cut -f1)

"$root/tests/servers/sshd.sh" start "$B/sshd" "$PORT" >"$B/sshd.out"
trap '"$root/tests/servers/sshd.sh" stop "$B/sshd"' EXIT
user=$(sed -n 's/^user=//p' "$B/sshd.out")
home=$(getent passwd "$user" | cut -d: -f6)
remote=$home/coffer-bench
rm -rf "$remote"
install -d -m 700 -o "$user" "$remote"

export COFFER_PASSWORD=bench RESTIC_PASSWORD=bench
export COFFER_SFTP_KEY_FILE=$B/sshd/client_key COFFER_SFTP_KNOWN_HOSTS=$B/sshd/known_hosts
ssh_cmd="ssh -p $PORT -i $B/sshd/client_key -o IdentitiesOnly=yes -o BatchMode=yes \
-o UserKnownHostsFile=$B/sshd/known_hosts -o StrictHostKeyChecking=yes $user@127.0.0.1 -s sftp"

# timed NAME CMD... -> appends "NAME wall_s rss_kb" to $B/times
timed() {
    local name=$1
    shift
    /usr/bin/time -f "%e %M" -o "$B/t" "$@" >/dev/null 2>"$B/err" || {
        echo "$name failed:" >&2
        cat "$B/err" >&2
        exit 1
    }
    echo "$name $(cat "$B/t")" >>"$B/times"
}

: >"$B/times"
cd "$B/corpus"
for run in $(seq 1 "$RUNS"); do
    rm -rf "$remote/c" "$remote/r" "$B/out"
    "$coffer" -r "sftp://$user@127.0.0.1:$PORT$remote/c" init >/dev/null
    restic -r "sftp:$user@127.0.0.1:$remote/r" -o sftp.command="$ssh_cmd" init >/dev/null
    sync
    timed coffer-backup "$coffer" -r "sftp://$user@127.0.0.1:$PORT$remote/c" backup src big.img
    timed restic-backup restic -r "sftp:$user@127.0.0.1:$remote/r" -o sftp.command="$ssh_cmd" \
        backup src big.img
    timed coffer-restore "$coffer" -r "sftp://$user@127.0.0.1:$PORT$remote/c" restore latest \
        --target "$B/out/c"
    timed restic-restore restic -r "sftp:$user@127.0.0.1:$remote/r" -o sftp.command="$ssh_cmd" \
        restore latest --target "$B/out/r"
    diff -r src "$B/out/c/src" >/dev/null && cmp big.img "$B/out/c/big.img"
    rdir=$(dirname "$(find "$B/out/r" -name big.img | head -1)")
    diff -r src "$rdir/src" >/dev/null && cmp big.img "$rdir/big.img"
    rm -rf "$B/out"
done

echo "corpus: $(find "$B/corpus/src" -type f | wc -l) small files + a 256 MiB file," \
    "$((size / 1000000)) MB; $RUNS run(s); sshd $(ssh -V 2>&1 | cut -d, -f1) on 127.0.0.1"
echo
echo "| step | tool | wall s (median) | MB/s | peak RSS MiB | repo MB |"
echo "|---|---|---|---|---|---|"
for step in backup restore; do
    for tool in coffer restic; do
        read -r wall rss < <(awk -v n="$tool-$step" '$1==n {print $2, $3}' "$B/times" |
            sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
        repo=$(du -sb "$remote/${tool:0:1}" | cut -f1)
        printf '| %s | %s | %.2f | %.0f | %d | %.1f |\n' "$step" "$tool" "$wall" \
            "$(echo "$size / 1000000 / $wall" | bc -l)" $((rss / 1024)) \
            "$(echo "$repo / 1000000" | bc -l)"
    done
done
rm -rf "$remote"
