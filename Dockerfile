# syntax=docker/dockerfile:1
#
# One image for the whole Postmaster fleet; the first argument picks what runs:
#   docker run postmaster ingress | dispatcher | sender | dlq-replayer | simulator
#   docker run --rm postmaster dlq stats          (the replay CLI, same as `npm run dlq -- stats`)
# Build: docker build -t postmaster .

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, compile TypeScript -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# vendor/ holds local packages that package.json's overrides point at (file:), needed by npm ci.
COPY package.json package-lock.json ./
COPY vendor ./vendor
# No dependency needs an install script; skipping them keeps a compromised package from running
# code at build time.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY services ./services
COPY scripts ./scripts
RUN npx tsc -p tsconfig.json

# ---- deps: production dependencies only, in their own stage so dev tools never reach the runtime --
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime --------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to node and reaps zombies. Node as PID 1 would ignore SIGTERM until
# a service has installed its handler (start-up can wait 15 s for the broker), turning every early
# stop into a SIGKILL after the grace period.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# Production refuses the development default secrets. The bundled simulator listens on loopback by
# default; in a container it must be reachable from the other containers.
ENV NODE_ENV=production SIMULATOR_HOST=0.0.0.0
WORKDIR /app
# package.json carries "type": "module", which the compiled ESM in dist/ needs to load.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/shared ./dist/shared
COPY --from=build /app/dist/services ./dist/services
COPY --chmod=0755 infra/docker/entrypoint.sh /usr/local/bin/postmaster
COPY infra/docker/healthcheck.mjs ./healthcheck.mjs
# The node image's unprivileged "node" user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# ingress, worker metrics (/metrics, /healthz, /readyz), simulator
EXPOSE 8080 9464 9090
# Each service answers /healthz on its own port; the script asks the ports this container could use.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/postmaster"]
CMD ["help"]
