/**
 * What the docs name must exist: every `postmaster_*` metric is declared by a service, every
 * UPPER_CASE setting is read somewhere in the code with the default the docs give it, the message
 * types are the ingress's, and every reference to a section of another doc finds that section.
 */
import { expect } from 'chai';
import { MESSAGE_TYPES } from '../../shared/domain/content/content.js';
import { envOf, loadConfig } from '../../shared/platform/config.js';
import { filesUnder, read } from './repo-files.js';

const DOCS = [...filesUnder('docs', '.md'), 'README.md', ...filesUnder('services', '.md')];
const CODE = [...filesUnder('services', '.ts'), ...filesUnder('shared', '.ts'), ...filesUnder('scripts', '.ts'), ...filesUnder('infra', '')];
const code = [...CODE, 'docker-compose.yml', 'Dockerfile', 'package.json'].map(read).join('\n');

/** Each doc's names matching `re` that `known` rejects, as "doc: name". */
function unknown(re: RegExp, known: (name: string) => boolean): string[] {
  return DOCS.flatMap((d) => [...new Set(read(d).match(re) ?? [])].filter((n) => !known(n)).map((n) => `${d}: ${n}`));
}

describe('docs: what they name exists in the code', () => {
  it('names only metrics a service declares', () => {
    const declared = new Set([...code.matchAll(/name: '(postmaster_[a-z0-9_]+)'/g)].map((m) => m[1]));
    expect(declared.size).to.be.greaterThan(20);
    const known = (n: string) => declared.has(n.replace(/_(bucket|count|sum)$/, '')) || n.startsWith('postmaster_process_');
    expect(unknown(/\bpostmaster_[a-z0-9_]*[a-z0-9]\b/g, known)).to.deep.equal([]);
  });

  it('names only settings and constants that the code spells', () => {
    const words = new Set(code.match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g));
    // Names the code matches by pattern, not by spelling: a number's `tokenEnv` (the operator names
    // it) and Meta's messaging-limit tiers (shared/platform/numbers.ts parses TIER_<n>[K]).
    const patterns = [/^WHATSAPP_ACCESS_TOKEN_[A-Z0-9_]+$/, /^TIER_\d+K?$/];
    expect(unknown(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g, (n) => words.has(n) || patterns.some((p) => p.test(n)))).to.deep.equal([]);
  });

  it("gives each setting's default as shared/platform/config.ts has it (tables, and `NAME` (default N unit) in prose)", () => {
    const defaults = envOf(loadConfig({}));
    const factor: Record<string, number> = { '': 1, ms: 1, s: 1000, min: 60_000, KiB: 1024 };
    const wrong: string[] = [];
    for (const d of DOCS) {
      const text = read(d);
      const rows = [...text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*)\|/gm)].map((m) => [m[1], m[2].trim().split(/[ (]/)[0].replace(/`/g, ''), ''] as const);
      const prose = [...text.replace(/\s+/g, ' ').matchAll(/`([A-Z][A-Z0-9_]+)`,? \((?:default:? )?([0-9][0-9,.]*) ?(ms|s|min|KiB)?[;,)]/g)].map((m) => [m[1], m[2], m[3] ?? ''] as const);
      for (const [name, given, unit] of [...rows, ...prose]) {
        if (!(name in defaults) || given === '') continue;
        const def = defaults[name];
        const n = Number(given.replace(/,/g, ''));
        const same = given === def || (def !== '' && (n === Number(def) || (name.endsWith('_MS') || unit === 'KiB') && n * factor[unit] === Number(def)));
        // A cell that is prose, not a value (SECURITY.md's rotation table: "no window needed: …"), says no default.
        if (!same && !(def === '' || given === 'no')) wrong.push(`${d}: ${name} ${given}${unit} (code: ${def || 'unset'})`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('lists the message types the ingress accepts, in docs/API.md and docs/SENDER.md', () => {
    const api = read('docs/API.md').split('\n').find((l) => l.startsWith('| `type` |'));
    const typesIn = (text: string) => [...text.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).filter((t) => t !== 'type');
    expect(typesIn(api!.split('|')[2]), 'docs/API.md, the `type` row').to.have.members(MESSAGE_TYPES);
    const sender = read('docs/SENDER.md').replace(/\s+/g, ' ');
    const list = /every type the send API accepts works: (.*?), each with an optional `context`/.exec(sender);
    expect(list, 'docs/SENDER.md names the types the send API accepts').to.not.equal(null);
    expect(typesIn(list![1]), 'docs/SENDER.md').to.have.members(MESSAGE_TYPES);
  });

  it('refers only to sections that exist', () => {
    const sections = new Map(
      filesUnder('docs', '.md').map((d) => {
        const t = read(d);
        const leads = [...t.matchAll(/^#+ (.+)$/gm), ...t.matchAll(/\*\*([^*\n]+?)\*\*/g), ...t.matchAll(/(?<![*\w])\*([^*\n]+?)\*(?!\*)/g)];
        return [d.slice('docs/'.length), leads.map((m) => m[1].trim().replace(/[.:]$/, ''))] as const;
      }),
    );
    const refs = [...DOCS, ...CODE.filter((f) => f.endsWith('.ts'))].flatMap((f) => {
      const text = read(f).replace(/\n\s*(\*|\/\/)?\s*/g, ' ');
      return [...text.matchAll(/\b([A-Z_]+\.md)\)?,? \(?["“*]([A-Za-z`][^"”*]*?)["”*]/g)].map((m) => ({ f, doc: m[1], section: m[2].replace(/[.,:]$/, '') }));
    });
    expect(refs.length).to.be.greaterThan(20);
    const broken = refs.filter(({ doc, section }) => sections.has(doc) && !sections.get(doc)!.some((s) => s.startsWith(section)));
    expect(broken.map(({ f, doc, section }) => `${f}: ${doc}, "${section}"`)).to.deep.equal([]);
  });
});
