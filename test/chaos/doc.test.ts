import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Audit } from '../../scripts/chaos/audit.js';
import { latestRunBlock, type RunMeta } from '../../scripts/chaos/report.js';
import type { ScenarioResult } from '../../scripts/chaos/run.js';
import { SCENARIOS } from '../../scripts/chaos/scenarios.js';
import { markers, replaceBlock } from '../../scripts/doc-block.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const doc = readFileSync(path.join(root, 'docs', 'RELIABILITY.md'), 'utf8');

/** docs/RELIABILITY.md is prose by hand around one block a full `npm run chaos` writes. */
describe('chaos report: docs/RELIABILITY.md', () => {
  const audit: Audit = {
    accepted: 120,
    delivered: 119,
    deadLettered: 1,
    lost: 0,
    duplicated: 0,
    misordered: 0,
    misorderedUsers: [],
    misorderedSample: [],
    lostSample: [],
    deadReasons: {},
  };
  const meta: RunMeta = {
    command: 'npm run chaos',
    date: '2030-01-01 00:00 UTC',
    tookMs: 60_000,
    machine: '2 cores',
    rabbitmq: 'RabbitMQ 9.9',
    settings: 'Load: test.',
  };
  const result: ScenarioResult = {
    name: 'kill -9 sender',
    audit,
    recoveryMs: 1500,
    longestGapMs: 800,
    load: null,
    notes: ['replacement ready after 1.0 s'],
    tookMs: 1,
  };

  it('describes every scenario the run has, and none it does not', () => {
    const sections = [...doc.matchAll(/^### (.+)$/gm)].map((m) => m[1]);
    expect(sections).to.have.members(SCENARIOS.map((sc) => sc.name));
  });

  it("rewrites only the latest-run block: the run's table, verdict and measurements, the prose untouched", () => {
    const { begin, end } = markers('chaos:latest-run');
    const written = replaceBlock(doc, 'chaos:latest-run', latestRunBlock([result], meta));
    const outside = (d: string) => d.slice(0, d.indexOf(begin)) + d.slice(d.indexOf(end));
    expect(outside(written)).to.equal(outside(doc));
    const block = written.slice(written.indexOf(begin), written.indexOf(end));
    expect(block).to.include('| kill -9 sender | 120 | 119 | 1 | 0 | 0 | 0 | 1.5 s |');
    expect(block).to.include('every scenario (1) lost 0, duplicated 0 and misordered 0');
    expect(block).to.include('- **kill -9 sender**: longest pause between two deliveries after the fault 0.8 s; replacement ready after 1.0 s.');
    expect(replaceBlock(written, 'chaos:latest-run', latestRunBlock([result], meta))).to.equal(written);
  });

  it("gives a scenario that could not run its error's first line, leaving the rest (a node's log tail) to the run's results", () => {
    const failed: ScenarioResult = {
      ...result,
      audit: null,
      recoveryMs: null,
      longestGapMs: null,
      notes: [],
      error: 'timed out waiting for node x\n[error] crash report\n  stack',
    };
    const block = latestRunBlock([failed], meta);
    expect(block).to.include('- **kill -9 sender**: error: timed out waiting for node x.');
    expect(block).not.to.include('crash report');
  });

  it('refuses a doc without the block instead of appending to it', () => {
    expect(() => replaceBlock('# Reliability\n', 'chaos:latest-run', 'x')).to.throw(/chaos:latest-run:begin/);
  });
});
