import { expect } from 'chai';
import { walReport, WalWatch, walWords } from '../../scripts/bench/broker-wal.js';

/**
 * The bench's account of the broker's WAL flushes: which messages of a window were in flight during
 * one, and the p99 of the others. The watch itself reads the real broker's data folder.
 */
describe('bench: broker WAL flushes in a measured window', () => {
  it("finds the real broker's WAL folder and sees no flush in a quiet half second", async function () {
    this.timeout(60_000);
    const watch = await WalWatch.start();
    expect(watch, 'the WAL folder of the broker on 127.0.0.1 (rabbitmqctl eval, read access)').to.not.equal(null);
    await new Promise((r) => setTimeout(r, 500));
    expect(watch!.stop()).to.deep.equal([]);
  });

  it('counts the flushes that overlap the window and gives the p99 of the messages clear of them', () => {
    // 100 messages of 20 ms from t=0 to t=990, and 10 slow ones in flight during a flush at 2000–2500.
    const spans: Array<[number, number]> = [];
    for (let i = 0; i < 100; i++) spans.push([i * 10, i * 10 + 20]);
    for (let i = 0; i < 10; i++) spans.push([1900 + i * 10, 2400 + i * 10]);
    const flushes = [
      { from: 2000, to: 2500 },
      { from: 9000, to: 9100 }, // after the window: not counted
    ];
    const w = walReport(flushes, spans);
    expect(w).to.deep.equal({ flushes: 1, flushMs: 500, p99Clear: 20 });
    expect(walWords(w)).to.equal('; broker WAL flush in the window, 0.5 s: p99 of the messages not in flight during it 20 ms');
  });

  it('says so when there was no flush, or when the WAL was not watched', () => {
    const spans: Array<[number, number]> = [[0, 10]];
    expect(walReport([{ from: 50, to: 60 }], spans)).to.deep.equal({ flushes: 0, flushMs: 0, p99Clear: null });
    expect(walWords(walReport([], spans))).to.equal('; no broker WAL flush in the window');
    expect(walReport(null, spans)).to.equal(null);
    expect(walWords(null)).to.equal('; broker WAL not watched');
  });
});
