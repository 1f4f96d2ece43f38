import { expect } from 'chai';
import { request } from 'undici';
import { useFleet } from '../support/use-fleet.js';
import { scanAll } from '../support/isolation.js';
import { laneQueues, totalDepth } from './lanes.js';
import { generator, type BadRequest } from './bad-requests.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20240607);
const COUNT = Number(process.env.FUZZ_COUNT ?? 1200);
const CONCURRENCY = 16;

describe('ingress: generated bad requests', function () {
  // No dispatcher or sender: anything published would stay in the lanes.
  const t = useFleet('fuzz', { dispatchers: 0, senders: 0 });

  it(`rejects ${COUNT} generated bad requests (seed ${SEED}) without a 5xx and publishes nothing`, async () => {
    const next = generator(SEED, t.fleet.cfg.ingressApiToken, t.fleet.cfg.whatsappAppSecret);
    const reqs: BadRequest[] = Array.from({ length: COUNT }, next);
    const failures: string[] = [];
    const seen = new Map<string, number>();
    let i = 0;
    const worker = async () => {
      while (i < reqs.length) {
        const n = i++;
        const r = reqs[n];
        let status: number;
        let body: any;
        try {
          const res = await request(`${t.fleet.ingress.url}${r.path}`, { method: r.method, headers: r.headers, body: r.body });
          status = res.statusCode;
          const text = await res.body.text();
          body = text.startsWith('{') ? JSON.parse(text) : text;
        } catch (err) {
          // A 413 may be answered before the whole body is sent; the server then closes the socket.
          if (r.expect.includes(413)) continue;
          failures.push(`#${n} ${r.what}: request failed: ${(err as Error).message}`);
          continue;
        }
        seen.set(`${r.what} → ${status}`, (seen.get(`${r.what} → ${status}`) ?? 0) + 1);
        if (!r.expect.includes(status)) failures.push(`#${n} ${r.what}: ${status} ${JSON.stringify(body).slice(0, 200)} (body ${r.body?.slice(0, 120)})`);
        if (status === 400 && (typeof body?.field !== 'string' || !body.message.startsWith(body.field)))
          failures.push(`#${n} ${r.what}: 400 without a field: ${JSON.stringify(body)}`);
        if (status === 207) {
          const bad = body.results.filter((x: { status: number; field?: string }) => x.status !== 400 || !x.field?.startsWith('messages.'));
          if (bad.length > 0 || body.accepted !== 0) failures.push(`#${n} ${r.what}: 207 with items not rejected: ${JSON.stringify(bad)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    if (process.env.FUZZ_VERBOSE) console.table(Object.fromEntries([...seen].sort()));
    expect(failures, failures.slice(0, 20).join('\n')).to.deep.equal([]);
    // Every kind of bad request was generated.
    expect(new Set([...seen.keys()].map((k) => k.split(' → ')[0].replace(/content-type .*/, 'content-type'))).size).to.be.greaterThan(20);

    expect(await totalDepth(t.fleet, laneQueues(t.fleet)), 'messages in the lanes').to.equal(0);
    expect(t.fleet.sim.ledger(), 'sends at the provider').to.have.length(0);
    const jobs = await t.fleet.ingress.schedule.queue.getJobCounts();
    expect(
      Object.values(jobs).reduce((a, b) => a + b, 0),
      'scheduled jobs',
    ).to.equal(0);
    const keys = await scanAll(t.iso.redis, `${t.iso.redisKeyPrefix}*`);
    // BullMQ writes its queue's meta key when it connects; anything else would be state of a request.
    expect(
      keys.filter((k) => !k.endsWith(':scheduled-sends:meta')),
      'status records, idempotency keys or webhook marks',
    ).to.deep.equal([]);
  });
});
