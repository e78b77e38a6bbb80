#!/usr/bin/env bash
# Builds the project's container image and runs it, offline, on a machine
# that can neither pull images nor run containers (buildah with chroot
# isolation works; a container runtime's setrlimit does not):
#
#   1. a stand-in for the Dockerfile's base image (Debian 12 from
#      debootstrap, plus this machine's Node 20 binary, tagged with the base
#      image's name), built once and cached;
#   2. `buildah bud --isolation chroot --pull=never` of the Dockerfile;
#   3. the image's filesystem mounted read-only and entered with chroot as
#      the image's user, with the image's entrypoint, command, working
#      directory and environment (read from `buildah inspect`), against the
#      Postgres on 127.0.0.1:5432 and an SMTP sink outside the chroot: the
#      migrate step, /readyz, the image's HEALTHCHECK, the sign-in page, a
#      send whose mail arrives, and a clean exit on SIGTERM.
#
# Idempotent: reruns reuse the cached rootfs, the stand-in base and buildah's
# layer cache; containers, mounts, the database and the sink are removed on
# exit. Needs root, buildah and debootstrap (.ci/run installs them).
#
#   deploy/check-image.sh                  # build and check
#   IMAGE_CACHE_DIR=/var/cache/otp-service-image  (where the debootstrap rootfs is kept)
#   DEBIAN_MIRROR=http://…/debian          (default: this machine's apt source for bookworm)
#   DATABASE_SERVER_URL=postgres://postgres@127.0.0.1:5432/postgres
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

log() { printf '[check-image] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (buildah mount, chroot)"
for tool in buildah debootstrap node npm psql curl mountpoint; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

CACHE=${IMAGE_CACHE_DIR:-/var/cache/otp-service-image}
SERVER_URL=${DATABASE_SERVER_URL:-postgres://postgres@127.0.0.1:5432/postgres}
IMAGE=localhost/otp-service:check
BASE=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile | head -n 1)
[ -n "$BASE" ] || die "no 'ARG NODE_IMAGE=' in the Dockerfile"
BASE_REF="docker.io/library/$BASE"
export BUILDAH_ISOLATION=chroot

# ------------------------------------------------------------------ cleanup
CTR="" MNT="" RO="" SINK_PID="" SVC_PID="" DB="" WORK="" BUILD_NPM=""
cleanup() {
  set +e
  [ -n "$SVC_PID" ] && kill -KILL "$SVC_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  if [ -n "$RO" ]; then
    for m in proc dev; do mountpoint -q "$RO/$m" && umount -l "$RO/$m"; done
    mountpoint -q "$RO" && umount -l "$RO"
    rmdir "$RO" 2>/dev/null
  fi
  [ -n "$CTR" ] && { buildah umount "$CTR" >/dev/null 2>&1; buildah rm "$CTR" >/dev/null 2>&1; }
  [ -n "$DB" ] && psql "$SERVER_URL" -qtAc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  [ -n "$WORK" ] && rm -rf "$WORK"
  [ -n "$BUILD_NPM" ] && rm -rf "$BUILD_NPM"
}
trap cleanup EXIT

# ---------------------------------------------------- 1. stand-in base image
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  # deb822 stanzas (URIs: … / Suites: … bookworm …) and one-line entries.
  local found
  found=$(awk '
    /^[[:space:]]*$/ { if (uri && suites ~ /(^|[[:space:]])bookworm($|[[:space:]])/) { print uri; exit } uri=""; suites=""; next }
    /^URIs:/ { uri=$2 } /^Suites:/ { suites=$0 }
    /^deb[[:space:]]/ && $3 == "bookworm" { print $2; exit }
    END { if (uri && suites ~ /(^|[[:space:]])bookworm($|[[:space:]])/) print uri }
  ' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  echo "${found:-http://deb.debian.org/debian}"
}

make_base() {
  local rootfs="$CACHE/bookworm-minbase"
  if [ ! -f "$rootfs/.complete" ]; then
    local mirror; mirror=$(debian_mirror)
    log "debootstrap a minimal Debian bookworm from $mirror into $rootfs (once)"
    rm -rf "$rootfs.tmp"; mkdir -p "$CACHE"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || die "debootstrap failed: see $CACHE/debootstrap.log"
    # As slim images are: no package lists, caches, docs or man pages.
    rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/cache/apt/* \
      "$rootfs.tmp"/usr/share/doc/* "$rootfs.tmp"/usr/share/man/* "$rootfs.tmp"/usr/share/info/*
    touch "$rootfs.tmp/.complete"
    rm -rf "$rootfs"; mv "$rootfs.tmp" "$rootfs"
  fi

  local node_bin; node_bin=$(command -v node)
  local node_version; node_version=$("$node_bin" --version)
  [[ "$BASE" == node:${node_version#v}-* ]] \
    || log "warning: this machine's Node is $node_version, the Dockerfile's base is $BASE: the stand-in carries $node_version"
  log "stand-in $BASE_REF: the rootfs + Node $node_version (/usr/local/bin/node) + npm + user node (1000)"
  local ctr mnt npm_dir
  ctr=$(buildah from --pull=never scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$rootfs/." "$mnt/"
  rm -f "$mnt/.complete"
  install -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  rm -f "$mnt/usr/local/lib/node_modules/npm/npmrc" # this machine's global npm settings stay here
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  grep -q '^node:' "$mnt/etc/group" || echo 'node:x:1000:' >>"$mnt/etc/group"
  grep -q '^node:' "$mnt/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$mnt/etc/passwd"
  mkdir -p "$mnt/home/node" && chown 1000:1000 "$mnt/home/node"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version#v}" --cmd node "$ctr"
  buildah commit --quiet --format docker --rm "$ctr" "$BASE_REF" >/dev/null
}

if buildah inspect --type image "$BASE_REF" >/dev/null 2>&1; then
  log "stand-in base $BASE_REF present"
else
  t0=$(date +%s)
  make_base
  log "stand-in base made in $(( $(date +%s) - t0 )) s"
fi

# ----------------------------------------------------------- 2. build image
log "buildah bud --isolation chroot --pull=never ($IMAGE)"
t0=$(date +%s)
# The build stages' `npm ci` use this machine's npm cache (filled by its own
# `npm ci`, so nothing is downloaded again) and its registry CA, through
# mounts that exist only during the build: nothing of this machine ends up
# in a layer, and the Dockerfile stays what any builder runs.
BUILD_NPM=$(mktemp -d -t otp-image-npm.XXXXXX)
NPM_CACHE=$(npm config get cache)
mkdir -p "$NPM_CACHE"
MOUNTS=(-v "$NPM_CACHE:/root/.npm" -v "$BUILD_NPM/npmrc:/root/.npmrc:ro")
echo "prefer-offline=true" >"$BUILD_NPM/npmrc"
CAFILE=$(npm config get cafile 2>/dev/null || true)
if [ -n "$CAFILE" ] && [ "$CAFILE" != null ] && [ "$CAFILE" != undefined ] && [ -f "$CAFILE" ]; then
  cp "$CAFILE" "$BUILD_NPM/ca.crt"
  MOUNTS+=(-v "$BUILD_NPM/ca.crt:/etc/otp-build-ca.crt:ro")
  echo "cafile=/etc/otp-build-ca.crt" >>"$BUILD_NPM/npmrc"
fi
buildah bud --isolation chroot --pull=never --layers --force-rm --format docker \
  "${MOUNTS[@]}" -f Dockerfile -t "$IMAGE" . >"${TMPDIR:-/tmp}/otp-image-build.log" 2>&1 \
  || { tail -n 40 "${TMPDIR:-/tmp}/otp-image-build.log" >&2; die "the image did not build"; }
BUILD_SECONDS=$(( $(date +%s) - t0 ))
# buildah's layer cache keeps the intermediate images of every build; keep
# this build's, drop the rest, so the cache does not grow with each change.
BUILD_LOG="${TMPDIR:-/tmp}/otp-image-build.log"
keep=$(grep -oE -- '--> (Using cache )?[0-9a-f]{11,}' "$BUILD_LOG" | grep -oE '[0-9a-f]{11,}$' | cut -c1-11 | sort -u)
for id in $(buildah images --filter dangling=true --format '{{.ID}}'); do
  grep -qx "${id:0:11}" <<<"$keep" || buildah rmi "$id" >/dev/null 2>&1 || true
done

image_size() { buildah images --format '{{.Size}}' "$1" | head -n 1; }
SIZE=$(image_size "$IMAGE")
BASE_SIZE=$(image_size "$BASE_REF")
log "built in ${BUILD_SECONDS} s; image size $SIZE (the base: $BASE_SIZE)"

# --------------------------------------------- 3. run its filesystem, chroot
CONFIG=$(buildah inspect --type image "$IMAGE" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).Docker.config)))')
cfg() { node -e "const c=JSON.parse(process.argv[1]);const v=($1);process.stdout.write(v==null?'':String(v))" "$CONFIG"; }
IMG_USER=$(cfg 'c.User')
IMG_WORKDIR=$(cfg 'c.WorkingDir')
mapfile -t IMG_ENV < <(cfg '(c.Env||[]).join("\n")')
mapfile -t IMG_ARGV < <(cfg '[...(c.Entrypoint||[]),...(c.Cmd||[])].join("\n")')
mapfile -t IMG_HEALTH < <(cfg 'c.Healthcheck && c.Healthcheck.Test[0]==="CMD" ? c.Healthcheck.Test.slice(1).join("\n") : ""')
mapfile -t IMG_ENTRY < <(cfg '(c.Entrypoint||[]).join("\n")')
EXPOSED=$(cfg 'Object.keys(c.ExposedPorts||{}).join(" ")')
log "image: user $IMG_USER, workdir $IMG_WORKDIR, exposes $EXPOSED, runs: ${IMG_ARGV[*]}"
[[ "$IMG_USER" =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] || die "the image's user '$IMG_USER' is not a numeric non-root user"
printf '%s\n' "${IMG_ENV[@]}" | grep -qx 'HOST=0.0.0.0' || die "the image's HOST is not 0.0.0.0"
[ "${#IMG_HEALTH[@]}" -gt 0 ] && [ -n "${IMG_HEALTH[0]}" ] || die "the image has no HEALTHCHECK"

CTR=$(buildah from --pull=never "$IMAGE")
MNT=$(buildah mount "$CTR")
# A read-only view of the image's root, with /proc and /dev as a runtime gives them.
RO=$(mktemp -d -t otp-image-root.XXXXXX)
mount --bind "$MNT" "$RO" && mount -o remount,bind,ro "$RO"
mount -t proc proc "$RO/proc"
mount --bind /dev "$RO/dev"
if chroot "$RO" /bin/sh -c 'touch /app/probe' 2>/dev/null; then die "the root filesystem is writable"; fi

WORK=$(mktemp -d -t otp-image-check.XXXXXX)
mkdir "$WORK/mail"
node deploy/smtp-sink.mjs "$WORK/mail" >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/sink.out" ] && break; sleep 0.1; done
SMTP_PORT=$(head -n 1 "$WORK/sink.out")
[[ "$SMTP_PORT" =~ ^[0-9]+$ ]] || die "the SMTP sink did not start: $(cat "$WORK/sink.out")"

DB="otp_image_check_$(date +%s)_$$"
psql "$SERVER_URL" -qtAc "CREATE DATABASE $DB" >/dev/null
DB_URL="${SERVER_URL%/*}/$DB"
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
ADMIN_TOKEN=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
RUN_ENV=("${IMG_ENV[@]}" "PORT=$PORT" "DATABASE_URL=$DB_URL" "SMTP_URL=smtp://127.0.0.1:$SMTP_PORT"
  "OTP_PEPPER=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')"
  "ADMIN_TOKEN=$ADMIN_TOKEN" "MIGRATE_ON_START=false")
# As a runtime starts the image: the user, the working directory, exactly this environment.
# (exec: when run in the background, $! is then the service's own pid, as
# PID 1 of a container would be, and signals go straight to it.)
in_image() { chroot --userspec="$IMG_USER" "$RO" /usr/bin/env -i -C "$IMG_WORKDIR" "${RUN_ENV[@]}" "$@"; }
exec_in_image() { exec chroot --userspec="$IMG_USER" "$RO" /usr/bin/env -i -C "$IMG_WORKDIR" "${RUN_ENV[@]}" "$@"; }

log "migrate step: ${IMG_ENTRY[*]} dist/server/migrate.mjs (twice)"
in_image "${IMG_ENTRY[@]}" dist/server/migrate.mjs >"$WORK/migrate1.out" 2>&1 || die "migrate failed: $(cat "$WORK/migrate1.out")"
grep -q '"migrations applied"' "$WORK/migrate1.out" || die "migrate applied nothing: $(cat "$WORK/migrate1.out")"
in_image "${IMG_ENTRY[@]}" dist/server/migrate.mjs >"$WORK/migrate2.out" 2>&1 || die "second migrate failed: $(cat "$WORK/migrate2.out")"
grep -q '"schema up to date"' "$WORK/migrate2.out" || die "second migrate was not a no-op: $(cat "$WORK/migrate2.out")"

log "starting the image's command on port $PORT"
exec_in_image "${IMG_ARGV[@]}" >"$WORK/service.out" 2>&1 &
SVC_PID=$!
BASE_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$SVC_PID" 2>/dev/null || die "the service exited: $(cat "$WORK/service.out")"
  sleep 0.2
done
curl -fsS "$BASE_URL/readyz" >/dev/null || die "/readyz did not answer 200: $(tail -n 20 "$WORK/service.out")"
log "/readyz 200"
in_image "${IMG_HEALTH[@]}" || die "the image's HEALTHCHECK failed"
log "HEALTHCHECK passed"
for page in /signin /openapi.json; do
  curl -fsS -o /dev/null "$BASE_URL$page" || die "GET $page failed: what it serves is missing from the image"
done
log "the sign-in page and /openapi.json are served from the image"

PROJECT=$(curl -fsS -X POST "$BASE_URL/admin/v1/projects" -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"Image check"}') || die "creating a project failed"
PROJECT_ID=$(node -e 'console.log(JSON.parse(process.argv[1]).project.project_id)' "$PROJECT")
SECRET=$(node -e 'console.log(JSON.parse(process.argv[1]).secret)' "$PROJECT")
EMAIL="image-check-$$@example.com"
SENT=$(curl -fsS -X POST "$BASE_URL/v1/otps/email/login_or_create" -u "$PROJECT_ID:$SECRET" \
  -H 'content-type: application/json' -d "{\"email\":\"$EMAIL\"}") || die "the send failed"
EMAIL_ID=$(node -e 'console.log(JSON.parse(process.argv[1]).email_id)' "$SENT")
mail_code() { node -e '
  const fs = require("fs");
  for (const f of fs.readdirSync(process.argv[1])) {
    const m = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
    const code = m.to === process.argv[2] && /\b(\d{6})\b/.exec(m.text);
    if (code) { console.log(code[1]); process.exit(0); }
  }
  process.exit(1)' "$WORK/mail" "$EMAIL"; }
CODE=""
for _ in $(seq 1 100); do CODE=$(mail_code) && break; sleep 0.1; done
[ -n "$CODE" ] || die "no mail reached the SMTP sink: $(tail -n 20 "$WORK/service.out")"
AUTH=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$BASE_URL/v1/otps/authenticate" -u "$PROJECT_ID:$SECRET" \
  -H 'content-type: application/json' -d "{\"method_id\":\"$EMAIL_ID\",\"code\":\"$CODE\"}")
[ "$AUTH" = 200 ] || die "authenticating the mailed code answered $AUTH"
log "send: mail delivered to the sink, code authenticated"

kill -TERM "$SVC_PID"
set +e; wait "$SVC_PID"; STATUS=$?; set -e
SVC_PID=""
[ "$STATUS" = 0 ] || die "SIGTERM: exit status $STATUS: $(tail -n 5 "$WORK/service.out")"
grep -q '"shutting down"' "$WORK/service.out" || die "no orderly shutdown in the log"
if grep -vq '^{' "$WORK/service.out"; then die "non-JSON output: $(grep -v '^{' "$WORK/service.out" | head -n 3)"; fi
log "SIGTERM: orderly shutdown, exit 0"

printf 'check-image: OK  image %s  size %s (base %s: %s)  build %s s\n' \
  "$IMAGE" "$SIZE" "$BASE" "$BASE_SIZE" "$BUILD_SECONDS"
