# syntax=docker/dockerfile:1.7
#
# codeQ server image: a multi-stage build on Node LTS.
#   build    installs the workspace (compiling better-sqlite3), then scripts/build-bundle.sh writes
#            the production bundle (server dist/ + production node_modules) to /out
#   runtime  the same Node image, slim, without build tools, npm, corepack or yarn; runs the bundle
#            as uid 1000 with data and artifacts under /var/lib/codeq
#
#   docker build -t ghcr.io/codeq-ts/codeq-server:dev .
#   docker run -d --name codeq -p 8080:8080 --env-file codeq.env \
#     -v codeq-data:/var/lib/codeq/pebble ghcr.io/codeq-ts/codeq-server:dev
#
# Both stages must use the same Node major: better-sqlite3's binary is built for the build stage's
# Node ABI. The image repository name above is a placeholder (see deploy/README.md).
#
# BUILD_NODE_IMAGE is the build stage's image and defaults to NODE_IMAGE. Set it only to an image
# with the same node binary as NODE_IMAGE plus npm and Node's C headers, as scripts/image.sh does
# with its local, registry-free bases (a runtime base without npm or headers is smaller).

ARG NODE_IMAGE=node:22-bookworm-slim
ARG BUILD_NODE_IMAGE=${NODE_IMAGE}

# ---------------------------------------------------------------------------------------------
FROM ${BUILD_NODE_IMAGE} AS build
# better-sqlite3 falls back to node-gyp when no prebuilt binary can be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG PNPM_VERSION=12.4.2
RUN npm install -g "pnpm@${PNPM_VERSION}" && pnpm --version
# pnpm >= 11 reads pnpm_config_* (not npm_config_*); node-gyp reads npm_config_nodedir and then
# uses the image's own headers instead of downloading them.
ENV CI=true \
    pnpm_config_store_dir=/pnpm/store \
    npm_config_nodedir=/usr/local \
    TURBO_TELEMETRY_DISABLED=1 \
    DO_NOT_TRACK=1
WORKDIR /src

# Download every locked package (pnpm 12 also runs the allowed build scripts here, compiling
# better-sqlite3 when no prebuilt binary downloads), so this layer is reused until the lockfile
# changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN --mount=type=cache,id=codeq-pnpm-store,target=/pnpm/store \
    pnpm fetch

COPY . .
# Install offline from the store (root tooling + the server and its workspace dependencies only),
# then build and bundle with the one script that CI's bundle smoke test also runs.
RUN --mount=type=cache,id=codeq-pnpm-store,target=/pnpm/store \
    pnpm install --offline --frozen-lockfile --filter codeq-ts --filter "@codeq/server..." \
 && bash scripts/build-bundle.sh /out

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="codeq-server" \
      org.opencontainers.image.description="codeQ for TypeScript: durable multi-tenant task queue server" \
      org.opencontainers.image.source="https://github.com/codeq-ts/codeq" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

# The runtime needs node only: drop the package managers shipped in the Node image.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && mkdir -p /var/lib/codeq/pebble /var/lib/codeq/artifacts \
 && chown -R 1000:1000 /var/lib/codeq \
 && chmod 0700 /var/lib/codeq/pebble /var/lib/codeq/artifacts

WORKDIR /app
# Owned by root and read-only for the server user.
COPY --from=build /out /app

# Defaults for a container; --env-file / -e override them. Data lives in /var/lib/codeq/pebble
# (mount a volume there), result artifacts in /var/lib/codeq/artifacts.
ENV PORT=8080 \
    PERSISTENCE_PROVIDER=sqlite \
    PERSISTENCE_CONFIG='{"path":"/var/lib/codeq/pebble","fsyncOnCommit":false}' \
    LOCAL_ARTIFACTS_DIR=/var/lib/codeq/artifacts

# "node" (uid/gid 1000) in the official Node images; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000

# HTTP API and /metrics; worker and producer gRPC streams (opened when WORKER_STREAM_ADDR=:9091
# and PRODUCER_STREAM_ADDR=:9092 are set).
EXPOSE 8080 9091 9092

# No curl in slim images: probe liveness with node's fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The server drains on SIGTERM (docker stop): HTTP in-flight requests finish, the store flushes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/main.js"]
