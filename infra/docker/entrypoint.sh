#!/bin/sh
# Entry point of the Postmaster image: the first argument names what to run, so one image serves
# every Deployment and compose service. `exec` replaces this shell with node, so the SIGTERM that
# tini forwards reaches the service's own graceful shutdown.
set -eu

SERVICES="ingress dispatcher sender dlq-replayer simulator"
cmd="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$cmd" in
  ingress | dispatcher | sender | dlq-replayer | simulator)
    # The production image leaves the simulator out (Dockerfile, target "dev" has it).
    if [ ! -f "/app/dist/services/$cmd/main.js" ]; then
      echo "postmaster: $cmd is not in this image; build it with --target dev" >&2
      exit 64
    fi
    exec node --enable-source-maps "/app/dist/services/$cmd/main.js" "$@"
    ;;
  dlq)
    # The replay CLI: docker run --rm -e AMQP_URL=… -e REDIS_URL=… postmaster dlq stats
    exec node --enable-source-maps /app/dist/services/dlq-replayer/cli.js "$@"
    ;;
  help | -h | --help)
    echo "usage: postmaster <service> | dlq <command> [options]"
    echo "  services: $SERVICES"
    echo "  dlq:      stats | list | show <id> | replay | purge | jobs  (see docs/OPERATIONS.md)"
    exit 0
    ;;
  *)
    echo "postmaster: unknown command \"$cmd\"; one of: $SERVICES, dlq, help" >&2
    exit 64
    ;;
esac
