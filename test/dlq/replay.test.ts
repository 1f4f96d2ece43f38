import { expect } from 'chai';
import { names } from '../../shared/amqp/topology/names.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { openReplayQueue } from '../../services/dlq-replayer/jobs.js';
import type { FaultRule } from '../../services/simulator/server.js';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { ids, peekQueue, runCli } from './helpers.js';

const A = '15551110001';
const B = '15551110002';
const C = '15551110003';
const D = '15551110004';
const rule = (to: string, code: number): FaultRule => ({ to, times: -1, status: 400, code });

describe('dlq replay and purge, end to end through the fleet', function () {
  let replayer: Replayer;
  let dlq: string;
  const sent: Record<string, string[]> = {};

  const depth = async () => (await queueDepths(t.iso.amqpUrl, [dlq]))[dlq];
  const accepted = (to: string) =>
    t.fleet.sim
      .accepted()
      .filter((e) => e.to === to)
      .map((e) => e.id);

  async function send(to: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const r = await t.fleet.send({ to, type: 'text', text: { body: `${to} #${i}` } });
      expect(r.status).to.equal(202);
      (sent[to] ??= []).push(r.body.id);
    }
  }

  const t = useFleet('dlq-replay');
  before(async () => {
    replayer = await startReplayer(t.fleet.cfg);
    t.defer('close the replayer', () => replayer.close());
    dlq = names(t.fleet.cfg.topologyPrefix).dlq;
    // Permanent failures: A and B "not on WhatsApp" (131026), C "re-engagement window closed" (131047).
    t.fleet.sim.setFaults({ rules: [rule(A, 131026), rule(B, 131026), rule(C, 131047)] });
    for (let i = 0; i < 4; i++) for (const to of [A, B, C]) await send(to, 1);
    await waitFor(async () => (await depth()) === 12, { timeoutMs: 30_000, what: '12 dead letters' });
  });

  it('stats counts what the sender dead-lettered', async () => {
    const s = (await runCli(t.fleet.cfg, ['stats', '--json'])).json();
    expect(s.total).to.equal(12);
    expect(s.byClass).to.deep.equal({ permanent: 8, 'window-closed': 4 });
    expect(s.byCode).to.deep.equal({ '131026': 8, '131047': 4 });
    expect(s.byStage).to.deep.equal({ send: 12 });
  });

  it('--dry-run says what a replay would do and changes nothing', async () => {
    const before = ids(await peekQueue(t.iso.amqpUrl, dlq));
    const r = await runCli(t.fleet.cfg, ['replay', '--code', '131026', '--dry-run', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json()).to.include({ dryRun: true, matched: 8, wouldAct: 8, unroutable: 0, depth: 12 });
    const queue = openReplayQueue(t.fleet.cfg, t.iso.redis);
    try {
      expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed')).to.equal(0);
    } finally {
      await queue.close();
    }
    const after = await waitFor(async () => ((await depth()) === 12 ? ids(await peekQueue(t.iso.amqpUrl, dlq)) : null));
    expect(after).to.deep.equal(before);
    expect(t.fleet.sim.accepted()).to.have.length(0);
  });

  it('refuses to replay or purge without --yes when stdin is not a terminal, or without a filter', async () => {
    const purge = await runCli(t.fleet.cfg, ['purge', '--code', '131047'], { input: 'y\n' });
    expect(purge.code).to.equal(2);
    expect(purge.stderr).to.contain('refusing to purge without confirmation: stdin is not a terminal');
    const replay = await runCli(t.fleet.cfg, ['replay', '--all']);
    expect(replay.code).to.equal(2);
    expect(replay.stderr).to.contain('refusing to replay');
    const unscoped = await runCli(t.fleet.cfg, ['purge', '--yes']);
    expect(unscoped.code).to.equal(2);
    expect(unscoped.stderr).to.contain('say which dead letters to purge');
    expect(await depth()).to.equal(12);
  });

  it('a filtered replay moves exactly the matching dead letters, which reach the provider in per-user order; the rest stay in order', async () => {
    const cBefore = ids(await peekQueue(t.iso.amqpUrl, dlq)).filter((id) => sent[C].includes(id!));
    t.fleet.sim.setFaults({ rules: [rule(C, 131047)] });
    const r = await runCli(t.fleet.cfg, ['replay', '--code', '131026', '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const job = r.json();
    expect(job.state).to.equal('completed');
    expect(job.progress).to.include({ matched: 8, replayed: 8, kept: 4, duplicates: 0 });
    await waitFor(() => accepted(A).length === 4 && accepted(B).length === 4, { timeoutMs: 20_000, what: 'A and B at the provider' });
    expect(accepted(A)).to.deep.equal(sent[A]);
    expect(accepted(B)).to.deep.equal(sent[B]);
    expect(accepted(C)).to.deep.equal([]);
    const left = await waitFor(async () => ((await depth()) === 4 ? ids(await peekQueue(t.iso.amqpUrl, dlq)) : null), { what: 'C left in the DLQ' });
    expect(left).to.deep.equal(cBefore);
    expect(left).to.deep.equal(sent[C]);
  });

  it('purge --yes deletes exactly the matching dead letters', async () => {
    t.fleet.sim.setFaults({ rules: [rule(C, 131047), rule(D, 131051)] });
    await send(D, 2);
    await waitFor(async () => (await depth()) === 6, { timeoutMs: 20_000, what: "D's 2 dead letters" });
    const r = await runCli(t.fleet.cfg, ['purge', '--code', '131051', '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json().progress).to.include({ purged: 2, kept: 4 });
    const left = await waitFor(async () => ((await depth()) === 4 ? ids(await peekQueue(t.iso.amqpUrl, dlq)) : null));
    expect(left).to.deep.equal(sent[C]);
    expect(accepted(D)).to.deep.equal([]);
  });

  it('replay --all --yes --wait empties the DLQ, and stats then prints "total": 0', async () => {
    t.fleet.sim.setFaults({ rules: [] });
    const r = await runCli(t.fleet.cfg, ['replay', '--all', '--yes', '--wait']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/completed: 4 replayed, 0 kept/);
    await waitFor(() => accepted(C).length === 4, { timeoutMs: 20_000, what: 'C at the provider' });
    expect(accepted(C)).to.deep.equal(sent[C]);
    const stats = await runCli(t.fleet.cfg, ['stats', '--json']);
    expect(stats.stdout).to.contain('"total": 0');
    expect(t.fleet.sim.ledger({ accepted: true }).length).to.equal(12);
  });

  it('lists the jobs, and shows one', async () => {
    const list = (await runCli(t.fleet.cfg, ['jobs', '--json'])).json();
    expect(list.jobs.map((j: { action: string; state: string }) => `${j.action}:${j.state}`)).to.deep.equal([
      'replay:completed',
      'purge:completed',
      'replay:completed',
    ]);
    const status = await runCli(t.fleet.cfg, ['jobs', 'status', list.jobs[2].id]);
    expect(status.stdout).to.match(/replayed \/ purged\s+│ 8 \/ 0/);
  });
});
