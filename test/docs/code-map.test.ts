/**
 * docs/ARCHITECTURE.md's "Code map": which folder may import which. Checked on the TypeScript
 * sources' relative imports (packages are not the map's business).
 */
import { expect } from 'chai';
import path from 'node:path';
import { filesUnder, read } from './repo-files.js';

/**
 * The layers of shared/, each with the layers it may import besides itself: platform at the bottom,
 * then the domain, the AMQP plumbing (which publishes the domain's envelope), failures, and the
 * stage machinery on top.
 */
const SHARED_LAYERS: Record<string, string[]> = {
  'shared/platform': [],
  'shared/domain': ['shared/platform'],
  'shared/amqp': ['shared/platform', 'shared/domain'],
  'shared/failures': ['shared/platform', 'shared/domain', 'shared/amqp'],
  'shared/stage': ['shared/platform', 'shared/domain', 'shared/amqp', 'shared/failures'],
};

/** The folder an import belongs to for the map: `services/<name>`, `shared/<layer>`, or the top folder. */
function area(file: string): string {
  const [top, second] = file.split('/');
  return top === 'services' || top === 'shared' ? `${top}/${second}` : top;
}

/** Every relative import of the project's TypeScript, as [importing file, imported file]. */
function imports(): Array<[string, string]> {
  const files = ['services', 'shared', 'scripts', 'test'].flatMap((d) => filesUnder(d, '.ts'));
  return files.flatMap((f) =>
    [...read(f).matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => [f, path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1])).replace(/\.js$/, '.ts')] as [string, string]),
  );
}

function allowed(from: string, to: string): boolean {
  const a = area(from);
  const b = area(to);
  if (a === b) return true;
  if (a.startsWith('shared/')) return (SHARED_LAYERS[a] ?? []).includes(b);
  if (a.startsWith('services/')) return b.startsWith('shared/');
  if (a === 'scripts') return b !== 'test';
  return a === 'test';
}

/** A cycle among the layers' rules, as the layers on it, or null. */
function cycle(rules: Record<string, string[]>): string[] | null {
  const done = new Set<string>();
  const visit = (layer: string, trail: string[]): string[] | null => {
    if (trail.includes(layer)) return [...trail.slice(trail.indexOf(layer)), layer];
    if (done.has(layer)) return null;
    for (const below of rules[layer] ?? []) {
      const found = visit(below, [...trail, layer]);
      if (found) return found;
    }
    done.add(layer);
    return null;
  };
  for (const layer of Object.keys(rules)) {
    const found = visit(layer, []);
    if (found) return found;
  }
  return null;
}

describe('code map: what each folder may import', () => {
  const all = imports();

  it('reads the imports of the whole tree', () => {
    expect(all.length).to.be.greaterThan(500);
  });

  it('puts every file of shared/ in a layer', () => {
    const loose = filesUnder('shared', '.ts').filter((f) => !(area(f) in SHARED_LAYERS));
    expect(loose).to.deep.equal([]);
  });

  it("keeps shared/'s layers a DAG over known layers", () => {
    for (const below of Object.values(SHARED_LAYERS).flat()) expect(SHARED_LAYERS, below).to.have.property(below);
    expect(cycle(SHARED_LAYERS)).to.equal(null);
    expect(cycle({ a: ['b'], b: ['c'], c: ['a'] }), 'the check finds a cycle').to.deep.equal(['a', 'b', 'c', 'a']);
  });

  it('a layer of shared/ imports only itself and the layers below it; a service imports shared/ and itself; scripts/ never test/', () => {
    const broken = all.filter(([from, to]) => !allowed(from, to)).map(([from, to]) => `${from} -> ${to}`);
    expect(broken).to.deep.equal([]);
  });

  it('refuses what the map forbids', () => {
    expect(allowed('shared/platform/config.ts', 'shared/amqp/topology/names.ts'), 'platform -> amqp').to.equal(false);
    expect(allowed('shared/domain/status.ts', 'shared/amqp/runtime.ts'), 'domain -> amqp').to.equal(false);
    expect(allowed('shared/amqp/publish.ts', 'shared/stage/metrics.ts'), 'amqp -> stage').to.equal(false);
    expect(allowed('shared/failures/router.ts', 'shared/stage/metrics.ts'), 'failures -> stage').to.equal(false);
    expect(allowed('shared/stage/worker.ts', 'services/sender/metrics.ts'), 'shared -> services').to.equal(false);
    expect(allowed('services/ingress/accept.ts', 'services/dispatcher/scheduler.ts'), 'across services').to.equal(false);
    expect(allowed('shared/stage/worker.ts', 'shared/failures/router.ts'), 'stage -> failures').to.equal(true);
  });
});
