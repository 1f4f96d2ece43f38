/**
 * docs/ARCHITECTURE.md's "Code map": which folder may import which. Checked on the TypeScript
 * sources' relative imports (packages are not the map's business).
 */
import { expect } from 'chai';
import path from 'node:path';
import { filesUnder, read } from './repo-files.js';

/** The folder an import belongs to for the map: `services/<name>`, or the top folder. */
function area(file: string): string {
  const [top, second] = file.split('/');
  return top === 'services' ? `${top}/${second}` : top;
}

/** Every relative import of the project's TypeScript, as [importing file, imported file]. */
function imports(): Array<[string, string]> {
  const files = ['services', 'shared', 'scripts', 'test'].flatMap((d) => filesUnder(d, '.ts'));
  return files.flatMap((f) =>
    [...read(f).matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => [f, path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1])).replace(/\.js$/, '.ts')] as [string, string]),
  );
}

/** Imports across services that the map allows: the schedule contract the ingress and dispatcher share. */
const ALLOWED_ACROSS_SERVICES = ['services/ingress/* -> shared/domain/schedule-queue.ts'];

function allowed(from: string, to: string): boolean {
  const a = area(from);
  const b = area(to);
  if (a === b || b === 'shared') return true;
  if (a === 'shared') return false;
  if (a.startsWith('services/')) return b.startsWith('services/') && ALLOWED_ACROSS_SERVICES.includes(`${a}/* -> ${to}`);
  if (a === 'scripts') return b !== 'test';
  return a === 'test';
}

describe('code map: what each folder may import', () => {
  const all = imports();

  it('reads the imports of the whole tree', () => {
    expect(all.length).to.be.greaterThan(500);
  });

  it('shared/ imports only shared/; a service imports shared/ and itself (and the listed contract); scripts/ never test/', () => {
    const broken = all.filter(([from, to]) => !allowed(from, to)).map(([from, to]) => `${from} -> ${to}`);
    expect(broken).to.deep.equal([]);
  });
});
