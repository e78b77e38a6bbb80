# otp-service: `node dist/server/server.mjs` on Node 20, as an unprivileged
# user, from a read-only tree. Build: `docker build -t otp-service .` (or
# `buildah bud --format docker …`; deploy/check-image.sh builds and runs it).
#
# The base is pinned by its exact tag (Node 20.20.2 on Debian 12 slim).
# Pin it by digest as well where you build (node:20.20.2-bookworm-slim@sha256:…,
# the digest your registry shows): this project's CI builds offline, against
# a stand-in base image with this name, so it cannot know the digest.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- build: all dependencies, then the bundles in dist/ --------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY gen ./gen
COPY src ./src
# The OpenAPI document (npm run generate makes it from proto/) is bundled in.
COPY docs/openapi.json ./docs/openapi.json
RUN npm run build

# --- runtime dependencies only ---------------------------------------------
# --omit=optional drops the platform binaries the service never runs in
# production: the embedded Postgres (~60 MB; with DATABASE_URL it is never
# loaded) and esbuild's (the bundles are built above).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# --- the image ---------------------------------------------------------------
FROM ${NODE_IMAGE}
WORKDIR /app
# Everything is owned by root and only readable by the service's user: the
# tree is read-only to it even without a read-only root filesystem.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY migrations ./migrations
COPY package.json ./
# HOST: reachable from outside the container (npm start keeps 127.0.0.1).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080
# The node user of the base image, by number, so that Kubernetes'
# runAsNonRoot can verify it.
USER 1000:1000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1: the service handles SIGTERM and SIGINT itself (ordered
# shutdown, exit 0) and spawns no children, so no init is needed to forward
# signals or reap zombies. `docker run IMAGE dist/server/migrate.mjs` runs
# the migrate step instead.
# Two malloc arenas instead of up to eight per CPU: 4-10 MB less peak
# RSS under the bench, for no CPU it could measure; blocks of 128 KiB and
# more mapped on their own, so freeing them returns them to the system
# (13-20 MB less peak RSS, a handful of mmap calls a second; docs/operations.md).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
ENTRYPOINT ["node"]
CMD ["--enable-source-maps", "--max-semi-space-size=8", "--heap-growing-percent=30", "dist/server/server.mjs"]
