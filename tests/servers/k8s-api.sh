# k8s-api.sh -- start and stop coffer's test Kubernetes API server (tests/k8s-api/server.js).
#
# Sourced by integration tests after lib.sh (needs $ROOT, $WORK, $COFFER, track_pid):
#     . "$ROOT/tests/servers/k8s-api.sh"
#     k8s_api_start PORT [SEED_FILE] [EXTRA_SERVER_ARGS...]    -> $K8S_URL, $K8S_DIR, $K8S_PID
#     k8s_kubeconfig FILE [USER_TOKEN]   writes a kubeconfig for $K8S_URL (token "admin-token")
#     k8s_api_stop                       stops the server by its pid
#
# The server's npm dependencies (kubernetes-models 5.1.0, js-yaml 4, pinned by
# tests/k8s-api/package-lock.json) are installed once with `npm ci` into K8S_API_DEPS (default:
# the build directory next to $COFFER, so they are never committed), under a lock so that
# parallel tests share one install. Certificates are made by the openssl CLI in $K8S_DIR: a CA
# for the server (127.0.0.1, localhost), a client CA with a client certificate (CN=cert-admin),
# and an unrelated CA for the wrong-CA test. Users and tokens come from users.json there:
#   admin-token -> admin (everything), reader-token -> reader (get/list/watch, no secrets,
#   no clusterroles), cert-admin (client certificate) -> everything, export-sa-token -> the
#   service account coffer/coffer-export, authorized by the RBAC objects in the server.
# Invariants: 127.0.0.1 only; the server is stopped by its own pid, never by name.

k8s_api_deps() {
    local deps=${K8S_API_DEPS:-$(dirname "$COFFER")/k8s-api-deps}
    mkdir -p "$deps"
    (
        flock 9
        if ! cmp -s "$ROOT/tests/k8s-api/package-lock.json" "$deps/package-lock.json" ||
            [ ! -d "$deps/node_modules/kubernetes-models" ]; then
            cp "$ROOT/tests/k8s-api/package.json" "$ROOT/tests/k8s-api/package-lock.json" "$deps/"
            (cd "$deps" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1) ||
                { cat "$deps/npm.log" >&2; exit 1; }
        fi
    ) 9>"$deps/.lock" || return 1
    K8S_API_MODULES=$deps/node_modules
    export K8S_API_MODULES
}

k8s_api_certs() {
    local d=$1
    mkdir -p "$d"
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
            -subj "/CN=coffer-test-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
            -days 2 -extfile server.ext 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout client-ca.key -out client-ca.crt -days 2 \
            -subj "/CN=coffer-test-client-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
            -subj "/O=system:masters/CN=cert-admin" 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA client-ca.crt -CAkey client-ca.key -CAcreateserial \
            -out client.crt -days 2 -extfile client.ext 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 \
            -subj "/CN=some-other-ca" 2>/dev/null
        cat >users.json <<'EOF'
{
  "tokens": {"admin-token": "admin", "reader-token": "reader", "empty-token": "nobody",
             "export-sa-token": "system:serviceaccount:coffer:coffer-export"},
  "users": {
    "admin": {"allow": ["*"]},
    "cert-admin": {"allow": ["*"]},
    "reader": {"allow": ["*"], "deny": ["secrets", "clusterroles.rbac.authorization.k8s.io"],
               "verbs": ["get", "list", "watch"]},
    "nobody": {"allow": []},
    "system:serviceaccount:coffer:coffer-export": {"rbac": true}
  }
}
EOF
    ) || return 1
}

# k8s_api_start PORT [SEED] [ARGS...]
k8s_api_start() {
    local port=$1 seed=${2:-}
    shift
    [ $# -gt 0 ] && shift
    K8S_DIR=$WORK/k8s-api
    k8s_api_deps || return 1
    [ -f "$K8S_DIR/server.crt" ] || k8s_api_certs "$K8S_DIR" || return 1
    rm -f "$K8S_DIR/ready"
    local args=(--port "$port" --cert "$K8S_DIR/server.crt" --key "$K8S_DIR/server.key"
        --client-ca "$K8S_DIR/client-ca.crt" --users "$K8S_DIR/users.json"
        --ready-file "$K8S_DIR/ready")
    [ -n "$seed" ] && args+=(--seed "$seed")
    node "$ROOT/tests/k8s-api/server.js" "${args[@]}" "$@" >>"$K8S_DIR/server.log" 2>&1 &
    K8S_PID=$!
    track_pid "$K8S_PID"
    local i
    for i in $(seq 200); do
        [ -s "$K8S_DIR/ready" ] && break
        kill -0 "$K8S_PID" 2>/dev/null || { cat "$K8S_DIR/server.log" >&2; return 1; }
        sleep 0.05
    done
    [ -s "$K8S_DIR/ready" ] || { echo "k8s-api did not start" >&2; return 1; }
    K8S_URL=https://127.0.0.1:$port
}

k8s_api_stop() {
    [ -n "${K8S_PID:-}" ] || return 0
    kill "$K8S_PID" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$K8S_PID" 2>/dev/null || break
        sleep 0.05
    done
    wait "$K8S_PID" 2>/dev/null || true
    K8S_PID=
}

# k8s_kubeconfig FILE [TOKEN] [NAMESPACE]
k8s_kubeconfig() {
    local f=$1 token=${2:-admin-token} ns=${3:-default}
    cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $K8S_URL
    certificate-authority: $K8S_DIR/ca.crt
users:
- name: test-user
  user:
    token: $token
contexts:
- name: test
  context:
    cluster: test
    user: test-user
    namespace: $ns
current-context: test
EOF
}

# k8s_curl METHOD PATH [curl args...]: a request as admin (for test setup and checks)
k8s_curl() {
    local method=$1 p=$2
    shift 2
    curl -sS --cacert "$K8S_DIR/ca.crt" -H "Authorization: Bearer admin-token" -X "$method" \
        "$K8S_URL$p" "$@"
}

# Helpers for tests that drive objects on the server with kubectl (test_operator*.sh):
#   kc ARGS...                  kubectl with a request timeout
#   ka ARGS...                  kubectl apply without client-side validation (that needs
#                               /openapi/v2; the server validates every object itself)
#   jpath KIND NAME EXPR        a Python expression over object d in namespace $K8S_NS
#   phase_is KIND NAME PHASE    status.phase of the object equals PHASE
#   wait_for DESC SECONDS CMD...  poll CMD (quietly) until it succeeds, else fail with DESC
kc() { kubectl --request-timeout=20s "$@"; }
ka() { kubectl --request-timeout=20s apply --validate=false "$@"; }
jpath() {
    kc -n "${K8S_NS:-default}" get "$1" "$2" -o json |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$3"
}
phase_is() { [ "$(jpath "$1" "$2" 'd.get("status",{}).get("phase","")')" = "$3" ]; }
wait_for() {
    local desc=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "timed out waiting for $desc"
}
