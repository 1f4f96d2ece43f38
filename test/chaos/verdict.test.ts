import { expect } from 'chai';
import type { Audit } from '../../scripts/chaos/audit.js';
import { verdict } from '../../scripts/chaos/report.js';
import type { ScenarioResult } from '../../scripts/chaos/run.js';

/** docs/RELIABILITY.md's headline comes from the run's audits, so a bad run cannot read as a good one. */
describe('chaos report: the verdict line', () => {
  const audit = (o: Partial<Audit> = {}): Audit => ({
    accepted: 100,
    delivered: 100,
    deadLettered: 0,
    lost: 0,
    duplicated: 0,
    misordered: 0,
    misorderedUsers: [],
    misorderedSample: [],
    lostSample: [],
    deadReasons: {},
    ...o,
  });
  const result = (name: string, a: Audit | null): ScenarioResult => ({ name, audit: a, recoveryMs: 0, longestGapMs: 0, load: null, notes: [], tookMs: 1 });

  it('says every scenario was clean only when every audit is', () => {
    expect(verdict([result('a', audit()), result('b', audit())])).to.include('every scenario (2) lost 0, duplicated 0 and misordered 0');
  });

  it('names each scenario that lost, duplicated or misordered, or did not complete', () => {
    const v = verdict([result('kill', audit({ lost: 3 })), result('ok', audit()), result('dup', audit({ duplicated: 1 })), result('broken', null)]);
    expect(v).to.not.include('every scenario');
    expect(v).to.include('3 of 4 scenarios');
    expect(v).to.include('kill (lost 3, duplicated 0, misordered 0)');
    expect(v).to.include('dup (lost 0, duplicated 1, misordered 0)');
    expect(v).to.include('broken (did not complete)');
    expect(v).to.not.include('ok (');
  });
});
