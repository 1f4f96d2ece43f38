# syntax=docker/dockerfile:1
#
# One image for the whole Postmaster fleet; the first argument picks what runs:
#   docker run postmaster ingress | dispatcher | sender | dlq-replayer
#   docker run --rm postmaster dlq stats          (the replay CLI, same as `npm run dlq -- stats`)
# Build: docker build -t postmaster .                       production (the default, last stage)
#        docker build --target dev -t postmaster:local .    the same plus the provider simulator
#                                                           (docker-compose.yml, local clusters)

ARG NODE_IMAGE=node:26-trixie-slim

# ---- build: every dependency, compile TypeScript -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script; skipping them keeps a compromised package from running
# code at build time.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY services ./services
COPY scripts ./scripts
# tsc, then the Lua scripts copied beside the compiled modules that read them (package.json "build").
RUN npm run build

# ---- deps: production dependencies only, in their own stage so dev tools never reach the runtime --
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- production-dist: the compiled services without the simulator ---------------------------------
# The simulator is a stand-in for the Cloud API that accepts any message: it has no place where the
# real one is reachable. Left out here rather than deleted in a later layer, where it would remain.
FROM build AS production-dist
RUN rm -rf /app/dist/services/simulator

# ---- runtime-base: what every runtime image has, without the services ------------------------------
FROM ${NODE_IMAGE} AS runtime-base
# tini as PID 1: forwards SIGTERM to node and reaps zombies. Node as PID 1 would ignore SIGTERM until
# a service has installed its handler (start-up can wait 15 s for the broker), turning every early
# stop into a SIGKILL after the grace period.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# Production refuses unsafe settings (shared/platform/production-policy.ts).
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", which the compiled ESM in dist/ needs to load.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/shared ./dist/shared
COPY --chmod=0755 infra/docker/entrypoint.sh /usr/local/bin/postmaster
COPY infra/docker/healthcheck.mjs ./healthcheck.mjs
# The node image's unprivileged "node" user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# ingress (API), every service's metrics (/metrics, /healthz, /readyz)
EXPOSE 8080 9464
# Each service answers /healthz on its own port; the script asks the ports this container could use.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/postmaster"]
CMD ["help"]

# ---- dev: every service and the provider simulator (docker-compose.yml, local clusters) ------------
FROM runtime-base AS dev
# The bundled simulator listens on loopback by default; in a container it must be reachable from the
# other containers.
ENV SIMULATOR_HOST=0.0.0.0
COPY --from=build /app/dist/services ./dist/services
EXPOSE 9090

# ---- production: the default target, the services without the simulator ---------------------------
FROM runtime-base AS production
COPY --from=production-dist /app/dist/services ./dist/services
