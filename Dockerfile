# Dockerfile -- the coffer image: the coffer binary (CLI, scheduler, operator) on Debian 12
# slim with the database clients the service backups run (pg_dump, mariadb-dump, redis-cli,
# slapcat/ldapsearch). Not built in this project's CI (no Docker engine there); kept plain.
#   docker build -t coffer:0.1.0 .
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential meson ninja-build pkg-config libssl-dev libzstd-dev libjansson-dev \
        libsodium-dev libcurl4-openssl-dev libyaml-dev libssh2-1-dev libfuse3-dev \
        libmicrohttpd-dev libarchive-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup /build --buildtype=release -Dtests=disabled \
    && ninja -C /build coffer \
    && install -m 0755 /build/coffer /usr/local/bin/coffer

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates tzdata libssl3 libzstd1 libjansson4 libsodium23 libcurl4 libyaml-0-2 \
        libssh2-1 libfuse3-3 libmicrohttpd12 libarchive13 \
        postgresql-client-15 mariadb-client redis-tools ldap-utils slapd openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 65532 --home-dir /home/coffer --create-home coffer
COPY --from=build /usr/local/bin/coffer /usr/local/bin/coffer
USER 65532
ENTRYPOINT ["coffer"]
CMD ["--help"]
