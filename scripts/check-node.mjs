// Refuses, in one line, a Node.js older than package.json's engines.node (npm's pre-scripts of
// start, test, bench, chaos, cluster). Plain JavaScript run before the build: it must work on any
// Node old enough to be refused.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const range = pkg.engines.node;
const floor = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range);
if (!floor) throw new Error(`check-node understands only ">=X.Y.Z" in engines.node, not ${JSON.stringify(range)}`);
const need = floor.slice(1).map((n) => Number(n ?? 0));
const have = process.versions.node.split('.').map(Number);
const first = need.findIndex((n, i) => have[i] !== n);
if (first >= 0 && have[first] < need[first]) {
  console.error(
    `postmaster needs Node.js ${range} (.nvmrc); this is ${process.version} (${process.execPath}). On Linux x64: export PATH="$(scripts/use-node.sh):$PATH"`,
  );
  process.exit(1);
}
