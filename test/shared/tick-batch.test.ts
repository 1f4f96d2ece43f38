import { expect } from 'chai';
import { TickBatch } from '../../shared/platform/tick-batch.js';

describe('shared/tick-batch: one call per turn of the event loop', () => {
  it('gives each caller its own result, from one run per batch per turn', async () => {
    const runs: number[][] = [];
    const double = new TickBatch<number, number>(async (items) => {
      runs.push(items);
      return items.map((i) => i * 2);
    });
    expect(await Promise.all([1, 2, 3].map((i) => double.add(i)))).to.deep.equal([2, 4, 6]);
    expect(await double.add(5)).to.equal(10);
    expect(runs).to.deep.equal([[1, 2, 3], [5]]);
  });

  it('runs `max` items at once and the rest on the turn', async () => {
    const runs: number[][] = [];
    const b = new TickBatch<number, number>(async (items) => (runs.push(items), items), 2);
    await Promise.all([1, 2, 3].map((i) => b.add(i)));
    expect(runs).to.deep.equal([[1, 2], [3]]);
  });

  it('rejects every caller of a batch whose run fails, or answers short', async () => {
    const failing = new TickBatch<number, number>(() => Promise.reject(new Error('down')));
    const out = await Promise.allSettled([failing.add(1), failing.add(2)]);
    expect(out.map((o) => o.status)).to.deep.equal(['rejected', 'rejected']);
    const short = new TickBatch<number, number>(async () => [1]);
    const [a, b] = await Promise.allSettled([short.add(1), short.add(2)]);
    expect(a).to.deep.equal({ status: 'fulfilled', value: 1 });
    expect((b as PromiseRejectedResult).reason.message).to.equal('batch answered 1 of 2 items');
  });

  it('flushes every batch of the turn in one callback, before the next tick (so one auto-pipelined write carries them all)', async () => {
    const order: string[] = [];
    const first = new TickBatch<number, void>(async (items) => {
      order.push('first');
      process.nextTick(() => order.push('next tick'));
      return items.map(() => undefined);
    });
    const second = new TickBatch<number, void>(async (items) => {
      order.push('second');
      return items.map(() => undefined);
    });
    await Promise.all([first.add(1), second.add(1)]);
    expect(order).to.deep.equal(['first', 'second', 'next tick']);
  });
});
