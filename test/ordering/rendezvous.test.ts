import { expect } from 'chai';
import { assignShards } from '../../shared/stage/rendezvous.js';

describe('shard assignment (rendezvous with bounded load)', () => {
  const count = (m: Map<number, string>) => {
    const c = new Map<string, number>();
    for (const owner of m.values()) c.set(owner, (c.get(owner) ?? 0) + 1);
    return c;
  };

  it('gives every shard exactly one owner and no replica more than ceil(shards/replicas)', () => {
    for (const n of [1, 2, 3, 5, 7, 16, 20]) {
      const members = Array.from({ length: n }, (_, i) => `replica-${i}`);
      const a = assignShards(members, 16);
      expect(a.size).to.equal(16);
      for (const c of count(a).values()) expect(c).to.be.at.most(Math.ceil(16 / n));
    }
  });

  it('is the same whatever order the members are listed in (every replica computes it alone)', () => {
    const a = assignShards(['a', 'b', 'c'], 16);
    const b = assignShards(['c', 'a', 'b'], 16);
    expect([...a]).to.deep.equal([...b]);
  });

  it('moves only a few shards when a replica joins', () => {
    const before = assignShards(['a', 'b', 'c'], 64);
    const after = assignShards(['a', 'b', 'c', 'd'], 64);
    let moved = 0;
    for (const [s, owner] of before) if (after.get(s) !== owner) moved++;
    // 16 shards must move to d; bounded loads may shift a few more, never most of them.
    expect(moved).to.be.at.least(16).and.at.most(32);
  });
});
