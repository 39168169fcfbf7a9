#!/bin/bash
# install-deps.sh -- install the Debian 12 packages coffer needs, and only those missing.
#
# Usage: scripts/install-deps.sh [build|test|bench]     (default: build)
#   build  compilers, meson/ninja and the libraries coffer links against
#   test   build + clang (sanitizers, libFuzzer), python3 (test tools), attr/acl
#   bench  test + the tools compared against and the data sets benchmarked
#
# Invariants: installs nothing that is already present (checked with dpkg-query), runs
# `apt-get update` at most once and only when something is missing, never prompts. Runs
# apt-get directly as root, through sudo otherwise. Dependencies come from Debian only.
set -euo pipefail

profile=${1:-build}

build_pkgs=(build-essential meson ninja-build pkg-config libssl-dev libzstd-dev libjansson-dev
    libsodium-dev libcmocka-dev libcurl4-openssl-dev libyaml-dev libssh2-1-dev libfuse3-dev
    libmicrohttpd-dev libarchive-dev)
test_pkgs=(clang libclang-rt-14-dev python3 attr acl)
# S3 tests: radosgw on a one-node memstore Ceph, s3rver from npm (tests/servers/npm), curl
test_pkgs_s3=(radosgw ceph-mon ceph-osd ceph-common nodejs curl)
# Debian's npm only where no npm exists (NodeSource's nodejs ships its own and conflicts)
command -v npm >/dev/null 2>&1 || test_pkgs_s3+=(npm)
# scheduler/notifications/metrics tests: SMTP sink, promtool, Pushgateway, zones, curl
test_pkgs_sched=(python3-aiosmtpd prometheus prometheus-pushgateway tzdata curl)
# k8s: node + npm run the test API server (tests/k8s-api); kubectl proves it realistic. Only
# what is missing: this image has nodesource's nodejs (with npm) and google-cloud-cli's kubectl.
test_pkgs_k8s=(openssl curl zstd)
command -v node >/dev/null 2>&1 || test_pkgs_k8s+=(nodejs)
command -v npm >/dev/null 2>&1 || test_pkgs_k8s+=(npm)
command -v kubectl >/dev/null 2>&1 || test_pkgs_k8s+=(kubernetes-client)
# service backups (tests/integration/test_svc_*.sh): real servers started on 127.0.0.1
test_pkgs_svc=(postgresql-15 mariadb-server mariadb-client redis-server redis-tools slapd ldap-utils
    openssl)
test_pkgs_sftp=(openssh-server openssh-sftp-server openssh-client)
# k8s manifests test: parses the generated multi-document YAML with PyYAML
test_pkgs_manifests=(python3-yaml)
bench_pkgs=(restic borgbackup linux-source-6.1 postgresql-15 time hyperfine)

case "$profile" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${test_pkgs_s3[@]}" "${test_pkgs_sched[@]}" "${test_pkgs_k8s[@]}" "${test_pkgs_svc[@]}" "${test_pkgs_sftp[@]}" "${test_pkgs_manifests[@]}") ;;
bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${test_pkgs_s3[@]}" "${test_pkgs_sched[@]}" "${test_pkgs_k8s[@]}" "${test_pkgs_svc[@]}" "${test_pkgs_sftp[@]}" "${test_pkgs_manifests[@]}"
    "${bench_pkgs[@]}") ;;
    "${test_pkgs_manifests[@]}") ;;
-h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "install-deps: unknown profile '$profile'; use build, test or bench" >&2
    exit 2
    ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done

# npm packages the tests run (s3rver), locked by tests/servers/npm/package-lock.json and
# installed outside the tree; tests/servers/s3rver.sh uses (and if needed makes) the same dir.
npm_deps() {
    case "$profile" in test | bench) ;; *) return 0 ;; esac
    local here dir
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/servers/npm
    dir=${COFFER_NPM_DIR:-$HOME/.cache/coffer-test-npm}
    if cmp -s "$here/package-lock.json" "$dir/package-lock.json" &&
        [ -x "$dir/node_modules/.bin/s3rver" ]; then
        return 0
    fi
    echo "install-deps: npm ci of tests/servers/npm into $dir"
    mkdir -p "$dir"
    cp "$here/package.json" "$here/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all '$profile' packages are installed"
    npm_deps
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps: missing packages (${missing[*]}) and not root; install them as" \
            "root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
# Server packages (mariadb, redis, slapd) must not start system services from their postinst:
# the tests start their own servers on 127.0.0.1 (policy-rc.d exit 101 = "not allowed").
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
fi
echo "install-deps: installing ${missing[*]}"
"${apt[@]}" update
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
npm_deps
