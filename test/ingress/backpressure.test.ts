import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { fixture, postWebhook } from '../webhooks/meta.js';

const run = promisify(execFile);

interface Answer {
  status: number;
  id?: string;
  retryAfter?: unknown;
  ms: number;
  at: number;
}

describe('ingress: back-pressure (503 + Retry-After instead of buffering)', function () {
  const t = useFleet('backpressure', { overrides: { publishTimeoutMs: 2000, ingressMaxInFlight: 20 } });

  const timed = async (to: string, n: number): Promise<Answer> => {
    const t0 = Date.now();
    const r = await t.fleet.send({ to, text: { body: `m${n}` } });
    return { status: r.status, id: r.body?.id, retryAfter: r.headers['retry-after'], ms: Date.now() - t0, at: t0 };
  };

  it('answers 503 beyond INGRESS_MAX_IN_FLIGHT, and 202 again once slots are free', async () => {
    const held = t.fleet.ingress.admission.acquire(t.fleet.cfg.ingressMaxInFlight);
    try {
      const r = await timed('15557770001', 0);
      expect(r.status).to.equal(503);
      expect(r.retryAfter).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
      expect((await postWebhook(t.fleet, fixture('inbound-text.json'))).status).to.equal(503);
    } finally {
      held.release();
    }
    expect((await timed('15557770001', 1)).status).to.equal(202);
    expect((await postWebhook(t.fleet, fixture('inbound-text.json'))).status).to.equal(200);
  });

  it('answers 503 while its broker connection is down, recovers by itself, and delivers every 202', async () => {
    const answers: Answer[] = [];
    let stop = false;
    const loops = Array.from({ length: 4 }, async (_, l) => {
      for (let n = 0; !stop; n++) answers.push(await timed(`155577710${l}0`, n));
    });
    try {
      await waitFor(() => answers.filter((a) => a.status === 202).length >= 20, { what: 'traffic flowing' });
      // The management API lists a new connection only after its next stats emission.
      const ingress = await waitFor(
        async () => {
          const conns = await t.iso.mgmt.call<Array<{ name: string; client_properties?: { connection_name?: string } }>>(
            'GET',
            `/api/vhosts/${encodeURIComponent(t.iso.vhost)}/connections`,
          );
          const found = conns.filter((c) => c.client_properties?.connection_name?.startsWith('postmaster-ingress@'));
          return found.length === 1 ? found : null;
        },
        { what: 'the ingress connection in the management API', timeoutMs: 20_000, intervalMs: 250 },
      );
      const killedAt = Date.now();
      await t.iso.mgmt.call('DELETE', `/api/connections/${encodeURIComponent(ingress[0].name)}`);
      await waitFor(() => answers.some((a) => a.status === 503 && a.at >= killedAt), { what: 'a 503 during the outage' });
      const firstRefusal = answers.find((a) => a.status === 503 && a.at >= killedAt)!;
      await waitFor(() => answers.some((a) => a.status === 202 && a.at > firstRefusal.at), { what: 'a 202 after recovery', timeoutMs: 15_000 });
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).to.be.greaterThan(0);
    for (const a of refused) expect(a.retryAfter).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
    expect(
      answers.every((a) => a.status === 202 || a.status === 503),
      'only 202 and 503',
    ).to.equal(true);
    // Bounded: nothing waited longer than the publish timeout (plus slack for the test machine).
    expect(Math.max(...answers.map((a) => a.ms))).to.be.below(t.fleet.cfg.publishTimeoutMs + 1000);
    const ids = answers.filter((a) => a.status === 202).map((a) => a.id!);
    await waitFor(
      () => {
        const got = new Set(t.fleet.sim.accepted().map((e) => e.id));
        return ids.every((id) => got.has(id));
      },
      { what: `all ${ids.length} accepted messages at the provider`, timeoutMs: 30_000 },
    );
  });

  it('answers 503 with Retry-After during a memory alarm (brief; always restored)', async function () {
    const ctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 30_000 });
    // Live (not from the stats database, which lags by seconds): 503 while any alarm is in effect.
    const alarmed = async () => {
      try {
        await t.iso.mgmt.call('GET', '/api/health/checks/alarms');
        return false;
      } catch (err) {
        return (err as { status?: number }).status === 503;
      }
    };
    const log: string[] = [];
    const t0 = Date.now();
    const mark = (what: string) => log.push(`${what} +${Date.now() - t0} ms`);
    try {
      await ctl('set_vm_memory_high_watermark', '0.000001');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') this.skip();
      throw err;
    }
    try {
      mark('watermark set');
      await waitFor(alarmed, { what: 'the memory alarm', timeoutMs: 15_000, intervalMs: 50 });
      mark('alarm raised');
      const r = await timed('15557770009', 0);
      mark(`first answer ${r.status}`);
      expect(r.status).to.equal(503);
      expect(r.retryAfter).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
      expect(r.ms).to.be.below(t.fleet.cfg.publishTimeoutMs + 1000);
      const again = await timed('15557770009', 1);
      mark(`second answer ${again.status} in ${again.ms} ms`);
      expect(again.status).to.equal(503);
    } finally {
      await ctl('set_vm_memory_high_watermark', '0.4');
      mark('watermark restored');
    }
    await waitFor(async () => !(await alarmed()), { what: 'the alarm to clear', timeoutMs: 15_000, intervalMs: 50 });
    mark('alarm cleared');
    const ok = await waitFor(
      async () => {
        const r = await timed('15557770009', 2);
        return r.status === 202 ? r : null;
      },
      { what: 'a 202 after the alarm', timeoutMs: 15_000, intervalMs: 100 },
    );
    mark('202 again');
    if (process.env.TEST_VERBOSE) console.log(log.join('\n'));
    expect(ok.id).to.be.a('string');
  });
});
