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
test_pkgs_sftp=(openssh-server openssh-sftp-server openssh-client)
bench_pkgs=(restic borgbackup linux-source-6.1 postgresql-15 time hyperfine)

case "$profile" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${test_pkgs_sftp[@]}") ;;
bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${test_pkgs_sftp[@]}" "${bench_pkgs[@]}") ;;
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

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all '$profile' packages are installed"
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
echo "install-deps: installing ${missing[*]}"
"${apt[@]}" update
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
