#!/bin/bash
# sshd.sh -- start or stop a private OpenSSH sshd on 127.0.0.1 for the SFTP tests.
#
# Usage: tests/servers/sshd.sh start DIR PORT [password]
#        tests/servers/sshd.sh stop DIR
#
# start: generates (once per DIR) an ed25519 host key DIR/host_ed25519, a client key
# DIR/client_key (no passphrase) and DIR/known_hosts (the host key as "[127.0.0.1]:PORT");
# writes DIR/sshd_config and starts /usr/sbin/sshd -D in the background with its pid in
# DIR/sshd.pid and its log in DIR/sshd.log; returns once the port answers. The server lets in
# one user, printed on stdout as the last line "user=NAME":
#   - as root: the user `coffersftp` (created if missing), with DIR/client_key.pub as its
#     ~/.ssh/authorized_keys.PORT; with "password" as the 4th argument the config
#     also allows password logins, and the user's password is set from COFFER_SFTP_PASSWORD.
#   - not root: sshd runs as the current user and lets in only that user (no passwords).
# stop: kills the sshd whose pid is in DIR/sshd.pid (the listener; the per-connection
# children exit with their connections) and waits for the port to close.
# Nothing outside DIR changes, except the test user, its ~/.ssh and /run/sshd (as root).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: sshd.sh start DIR PORT [password] | stop DIR" >&2
    exit 2
fi

case "$cmd" in
start)
    port=${3:?port missing}
    mode=${4:-key}
    [ -x /usr/sbin/sshd ] || { echo "sshd.sh: /usr/sbin/sshd is missing: apt-get install openssh-server openssh-sftp-server" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C coffer-test-host -f "$dir/host_ed25519"
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C coffer-test-client -f "$dir/client_key"
    if [ "$(id -u)" = 0 ]; then
        user=coffersftp
        if ! id "$user" >/dev/null 2>&1; then
            useradd -m -s /bin/bash "$user" 2>/dev/null || id "$user" >/dev/null
        fi
        usermod -p '*' "$user" # a locked account ('!') may not log in even with a key
        if [ "$mode" = password ]; then
            [ -n "${COFFER_SFTP_PASSWORD:-}" ] || { echo "sshd.sh: set COFFER_SFTP_PASSWORD" >&2; exit 2; }
            echo "$user:$COFFER_SFTP_PASSWORD" | chpasswd
        fi
        home=$(getent passwd "$user" | cut -d: -f6)
        install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
        # one file per port, so two servers of one test (or two tests) do not share it
        install -m 600 -o "$user" -g "$user" "$dir/client_key.pub" "$home/.ssh/authorized_keys.$port"
        keys=.ssh/authorized_keys.$port
        mkdir -p /run/sshd
        chmod 755 /run/sshd
        strict=yes
    else
        user=$(id -un)
        cp "$dir/client_key.pub" "$dir/authorized_keys"
        keys=$dir/authorized_keys
        strict=no
        mode=key
    fi
    pw=no
    [ "$mode" = password ] && pw=yes
    cat >"$dir/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $keys
StrictModes $strict
PasswordAuthentication $pw
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin no
AllowUsers $user
Subsystem sftp internal-sftp
MaxStartups 100
MaxSessions 20
LogLevel VERBOSE
CFG
    /usr/sbin/sshd -t -f "$dir/sshd_config"
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "sshd.sh: port $port on 127.0.0.1 is already in use" >&2
        exit 1
    fi
    /usr/sbin/sshd -D -e -f "$dir/sshd_config" >>"$dir/sshd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/sshd.pid.launcher"
    for _ in $(seq 1 100); do
        # ready once the port answers with this server's own host key
        if kill -0 "$pid" 2>/dev/null &&
            ssh-keyscan -T 2 -t ed25519 -p "$port" 127.0.0.1 >"$dir/known_hosts.new" 2>/dev/null &&
            grep -qF "$(cut -d' ' -f2 "$dir/host_ed25519.pub")" "$dir/known_hosts.new"; then
            mv "$dir/known_hosts.new" "$dir/known_hosts"
            echo "pid=$pid"
            echo "user=$user"
            exit 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "sshd.sh: sshd did not start on 127.0.0.1:$port (see $dir/sshd.log)" >&2
    tail -5 "$dir/sshd.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
stop)
    dir=$(cd "$dir" && pwd)
    pid=$(cat "$dir/sshd.pid.launcher" 2>/dev/null || cat "$dir/sshd.pid" 2>/dev/null || true)
    [ -n "$pid" ] || exit 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$dir/sshd.pid.launcher"
    ;;
*)
    echo "usage: sshd.sh start DIR PORT [password] | stop DIR" >&2
    exit 2
    ;;
esac
