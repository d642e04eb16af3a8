# Tollgate's image: a static-stdlib release build, on a minimal Debian runtime, as a non-root user.
#
#   docker build -t tollgate:0.9.0 .
#   docker run --rm -p 8545:8545 tollgate:0.9.0 serve --listen 0.0.0.0:8545 --upstream ethereum=http://host.docker.internal:8545
#
# The runtime stage provides exactly what deploy/docker/runtime-libraries.txt lists; DeploymentTests
# checks that the --static-swift-stdlib binary needs nothing else (readelf NEEDED).

# ---- build
FROM swift:6.3-bookworm AS build
# The system zlib behind CTollgateZlib.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
# Tests too: the manifest names their folders (they are not built here).
COPY Sources ./Sources
COPY Tests ./Tests
# A release build with the static Swift runtime (--static-swift-stdlib), the request path's code
# laid out together by lld in the order of scripts/hot-path.order (scripts/release-build says why).
COPY scripts/release-build scripts/hot-path.order ./scripts/
RUN scripts/release-build \
    && install -D -m 0755 "$(scripts/release-build --show-bin-path)/tollgate" /out/usr/local/bin/tollgate \
    && mkdir -p /out/var/lib/tollgate/spool /out/etc/tollgate

# ---- runtime
FROM debian:bookworm-slim
# CA roots for https:// nodes, ClickHouse and PostgreSQL with TLS; tzdata for log timestamps.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
RUN chown -R 65532:65532 /var/lib/tollgate
USER 65532:65532
WORKDIR /var/lib/tollgate
EXPOSE 8545 9464 9465
# SIGTERM drains in-flight requests and flushes telemetry (server.drain_timeout_ms).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--listen", "0.0.0.0:8545"]
