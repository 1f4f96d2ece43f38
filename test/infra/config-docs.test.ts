/**
 * docs/CONFIG.md and .env.example: generated from the convict schemas (drift), one row per variable, and the
 * "read by" column it derives from the source agrees with what the code says elsewhere: each
 * service's own secrets (shared/platform/production-policy.ts) are read by that service and by no other.
 */
import { expect } from 'chai';
import { configReaders, SERVICES } from '../../scripts/config-readers.js';
import { renderConfigDocs, renderEnvExample } from '../../scripts/gen-config-docs.js';
import { loadConfig } from '../../shared/platform/config.js';
import { SIMULATOR_CONFIG_SCHEMA } from '../../services/simulator/config.js';
import { CONFIG_SCHEMA } from '../../shared/platform/config.js';
import { secretsOf, type ServiceRole } from '../../shared/platform/production-policy.js';
import { read, ROOT, scriptExitCode } from './repo.js';

/** The variables of a `## ` section's table, in order. */
function tableVariables(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}`);
  expect(start, heading).to.be.greaterThan(0);
  const end = markdown.indexOf('\n## ', start + 1);
  return [...markdown.slice(start, end < 0 ? undefined : end).matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
}

describe('configuration reference (docs/CONFIG.md)', () => {
  const doc = read('docs/CONFIG.md');
  const keys = Object.keys(CONFIG_SCHEMA) as Array<keyof typeof CONFIG_SCHEMA>;
  const readers = configReaders(ROOT, keys);

  it('is exactly what npm run gen:config-docs generates from the schemas now', async () => {
    expect(doc).to.equal(renderConfigDocs(ROOT));
    expect(await scriptExitCode('dist/scripts/gen-config-docs.js', ['--check'])).to.equal(0);
  });

  it('has one row for every variable of each schema, in the schema\'s order', () => {
    expect(tableVariables(doc, 'Services')).to.deep.equal(keys.map((k) => CONFIG_SCHEMA[k].env));
    expect(tableVariables(doc, 'Provider simulator')).to.deep.equal(Object.values(SIMULATOR_CONFIG_SCHEMA).map((e) => e.env));
  });

  it('names a program that reads each variable (no variable is read by nothing)', () => {
    expect(keys.filter((k) => readers.get(k)!.length === 0).map((k) => CONFIG_SCHEMA[k].env)).to.deep.equal([]);
  });

  it('finds each service\'s own secrets read by that service and by no other service', () => {
    const roles: ServiceRole[] = ['ingress', 'dispatcher', 'sender', 'dlq-replayer'];
    for (const role of roles) {
      for (const secret of secretsOf(role)) {
        const by = readers.get(secret)!.filter((p) => SERVICES.includes(p) && p !== 'dlq CLI');
        expect(by, CONFIG_SCHEMA[secret].env).to.deep.equal([role]);
      }
    }
  });

  it('comes with a .env.example that is generated too, and that loads as the defaults once uncommented', () => {
    const example = read('.env.example');
    expect(example).to.equal(renderEnvExample());
    const env = Object.fromEntries([...example.matchAll(/^# ([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.keys(env)).to.deep.equal(keys.map((k) => CONFIG_SCHEMA[k].env));
    const defaults = loadConfig({});
    expect(loadConfig(env)).to.deep.equal(defaults);
  });

  it('is linked from README.md and docs/OPERATIONS.md', () => {
    expect(read('README.md')).to.include('docs/CONFIG.md');
    expect(read('docs/OPERATIONS.md')).to.include('CONFIG.md');
  });
});
