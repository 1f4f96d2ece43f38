import { expect } from 'chai';
import type { ConsumeMessage } from 'amqplib';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ScheduledSends, FAILED_JOB_RETENTION_S, schedulePrefix, SCHEDULE_QUEUE, type ScheduledJob } from '../../shared/domain/schedule-queue.js';
import { loadConfig } from '../../shared/platform/config.js';
import { newId, H, type Envelope } from '../../shared/domain/envelope.js';
import { classifyProviderError } from '../../shared/failures/classify.js';
import { PermanentError } from '../../shared/failures/errors.js';
import { FailureRouter } from '../../shared/failures/router.js';
import { createLogger } from '../../shared/platform/logger.js';
import { failureReason, MAX_DEPTH, redactValue, REDACTED, TRUNCATED } from '../../shared/platform/redact.js';
import { keyspace } from '../../shared/platform/redis.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import { StatusStore } from '../../shared/domain/status.js';
import { isolate, REDIS_URL, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

const PHONE = '15551234567';
const TEXT = 'meet me at the old mill, my PIN is 4711';

/** A logger writing into arrays: the lines as written, and parsed. */
function capture(level = 'debug'): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, any>>; raw: string[] } {
  const raw: string[] = [];
  const lines: Array<Record<string, any>> = [];
  const log = createLogger(
    { level, service: 'redaction-test' },
    {
      write: (s: string) => {
        raw.push(s);
        lines.push(JSON.parse(s));
      },
    },
  );
  return { log, raw, lines };
}

function envelope(over: Partial<Envelope> = {}): Envelope {
  return {
    id: newId(),
    kind: 'outbound',
    user: PHONE,
    priority: 'normal',
    createdAt: new Date().toISOString(),
    payload: { type: 'text', text: { body: TEXT } },
    attempt: 0,
    ...over,
  };
}

describe('personal data out of logs, failure headers and status records', () => {
  describe('the logger', () => {
    it('redacts numbers and text at depth 5, keeps ids, codes and the message structure', () => {
      const { log, lines, raw } = capture();
      const messageId = newId();
      log.info(
        {
          messageId,
          wamid: 'wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI',
          a: { b: { c: { d: { to: PHONE, user: PHONE, text: { body: TEXT }, caption: TEXT, code: '131026', id: '123456789012' } } } },
        },
        'sending',
      );
      const d = lines[0].a.b.c.d;
      expect(d).to.deep.equal({ to: REDACTED, user: REDACTED, text: REDACTED, caption: REDACTED, code: '131026', id: '123456789012' });
      expect(lines[0]).to.include({ messageId, wamid: 'wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI', msg: 'sending', service: 'redaction-test' });
      expect(raw.join('')).not.to.include(PHONE.slice(1)).and.not.to.include('old mill');
    });

    it('takes phone-like digit runs out of messages, format arguments, error strings and Errors', () => {
      const { log, lines, raw } = capture();
      log.warn(`no WhatsApp account for ${PHONE}`);
      log.warn('recipient %s refused', `+${PHONE}`);
      log.error({ err: `provider answered 400: bad number +1 555-123-4567` }, 'failed');
      const err = Object.assign(new Error(`cannot reach ${PHONE}`), { code: 'E131026', to: PHONE });
      log.error(err);
      log.error({ err }, 'wrapped');
      expect(lines[0].msg).to.equal(`no WhatsApp account for ${REDACTED}`);
      expect(lines[1].msg).to.equal(`recipient ${REDACTED} refused`);
      expect(lines[2].err).to.equal(`provider answered 400: bad number ${REDACTED}`);
      for (const line of [lines[3], lines[4]]) {
        expect(line.err).to.include({ type: 'Error', message: `cannot reach ${REDACTED}`, code: 'E131026', to: REDACTED });
        expect(line.err.stack).to.be.a('string');
      }
      expect(lines[3].msg).to.equal(`cannot reach ${REDACTED}`);
      expect(raw.join('')).not.to.include('5551234567').and.not.to.include('555-123-4567');
    });

    it('keeps dates, durations, short codes and ids in text', () => {
      const { log, lines } = capture();
      log.info({ at: '2026-12-05T20:15:45.123Z', note: 'retry in 30000 ms, code 131056, shard 12' }, 'at 2026-12-05 20:15');
      expect(lines[0]).to.include({ at: '2026-12-05T20:15:45.123Z', note: 'retry in 30000 ms, code 131056, shard 12', msg: 'at 2026-12-05 20:15' });
    });

    it("redacts child bindings, and a grandchild's", () => {
      const { log, lines } = capture();
      log
        .child({ user: PHONE, component: 'x' })
        .child({ deep: { from: PHONE } })
        .info('hello');
      expect(lines[0]).to.include({ user: REDACTED, component: 'x' });
      expect(lines[0].deep).to.deep.equal({ from: REDACTED });
    });

    it('bounds the walk: too deep or too big is dropped, never written unredacted, cycles end', () => {
      let deep: Record<string, unknown> = { text: TEXT };
      for (let i = 0; i < MAX_DEPTH + 5; i++) deep = { next: deep };
      const cyclic: Record<string, unknown> = { name: 'loop' };
      cyclic.self = cyclic;
      const wide = { items: Array.from({ length: 2000 }, (_, i) => ({ i, body: TEXT })) };
      const out = JSON.stringify([redactValue(deep), redactValue(cyclic), redactValue(wide)]);
      expect(out).not.to.include('old mill');
      expect(out).to.include(TRUNCATED);
    });

    it('costs little per line (micro-benchmark, printed for the record)', function () {
      this.timeout(30_000);
      const sink = { write: () => {} };
      const redacting = createLogger({ level: 'info', service: 'x' }, sink);
      const plain = pino({ level: 'info', base: { service: 'x' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
      const line = {
        messageId: newId(),
        lane: 'send.3',
        attempt: 2,
        fate: { action: 'retry', tierMs: 5000 },
        err: 'provider answered 503 code 131000: Something went wrong',
      };
      const perLineUs = (f: () => void) => {
        for (let i = 0; i < 2000; i++) f();
        const t = process.hrtime.bigint();
        for (let i = 0; i < 20_000; i++) f();
        return Number(process.hrtime.bigint() - t) / 20_000 / 1000;
      };
      const withRedaction = perLineUs(() => redacting.warn(line, 'message failed'));
      const without = perLineUs(() => plain.warn(line, 'message failed'));
      console.log(`        a warn line: ${withRedaction.toFixed(2)} µs redacted, ${without.toFixed(2)} µs plain pino`);
      // Generous bound for a shared, busy machine: the walk is a few µs; a line is written at
      // warn or info only when something went wrong or changed.
      expect(withRedaction - without, 'redaction overhead per line (µs)').to.be.below(50);
    });
  });

  describe('failure headers and reasons', () => {
    const cfg = loadConfig({});
    const router = new FailureRouter(undefined as never, topologyFromConfig(cfg), undefined as never);
    const delivery = (env: Envelope) => ({
      msg: { fields: { routingKey: PHONE }, properties: { headers: {} }, content: Buffer.from(JSON.stringify(env)) } as unknown as ConsumeMessage,
      lane: 'send' as const,
      envelope: env,
    });

    it("keep the provider's code and reason, not the text its error echoes", () => {
      const env = envelope();
      const err = classifyProviderError(400, {
        error: { code: 100, message: `(#100) Invalid parameter: text.body "${TEXT}" for ${PHONE}`, type: 'OAuthException' },
      });
      const h = router.headersFor(delivery(env), err, 1);
      expect(h[H.failureCode]).to.equal('100');
      expect(h[H.failureClass]).to.equal('permanent');
      expect(h[H.failureMessage]).to.match(/^provider answered 400 code 100: \(#100\) Invalid parameter: text\.body/);
      expect(JSON.stringify(h[H.failureMessage])).not.to.include('old mill').and.not.to.include(PHONE);
    });

    it("drop a bot handler's body and the message's own text wherever it is echoed", () => {
      const env = envelope({ kind: 'inbound' });
      const bot = new PermanentError(`bot handler answered 422: could not handle ${TEXT}`, { code: 'handler-422' });
      expect(router.headersFor(delivery(env), bot, 1)[H.failureMessage]).to.equal('bot handler answered 422: [body not kept]');
      const echoed = new PermanentError(`handler crashed on: ${TEXT.slice(0, 20)} and then ${TEXT}`, { code: 'handler-crash' });
      const m = String(router.headersFor(delivery(env), echoed, 1)[H.failureMessage]);
      expect(m).not.to.include('old mill');
      expect(m).to.include('handler crashed on:');
    });

    it('keep reasons short and bodies out even without the envelope (poison)', () => {
      expect(failureReason({ message: `bad json {"to":"${PHONE}","text":{"body":"${TEXT}"}}` })).to.equal('bad json [json]');
      expect(failureReason({ message: 'x'.repeat(1000) })).to.have.length(200);
      expect(failureReason({ message: 'handed out 3 times without an ack (crash or lost channel)' })).to.equal(
        'handed out 3 times without an ack (crash or lost channel)',
      );
    });
  });

  describe('with Redis', () => {
    let iso: Isolation;
    let redis: Redis;

    before(async () => {
      iso = await isolate('redaction');
      redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    });
    after(async () => {
      redis?.disconnect();
      await iso?.cleanup();
    });

    it("stores a status record's error as code, class and reason, without the text", async () => {
      const cfg = iso.config();
      const store = new StatusStore({ redis, cfg, keys: keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix) });
      const id = newId();
      await store.record(id, 'dead-lettered', {
        error: { code: 'handler-400', class: 'permanent', message: `bot handler answered 400: "${TEXT}"`, details: `to ${PHONE}` },
      });
      const rec = await store.get(id);
      expect(rec!.error).to.deep.equal({
        code: 'handler-400',
        class: 'permanent',
        message: 'bot handler answered 400: [body not kept]',
        details: `to ${REDACTED}`,
      });
    });

    it('lets a failed scheduled job expire: removeOnFail has an age', async () => {
      const cfg = iso.config();
      const rt = { cfg, redis, keys: keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix) };
      const sends = new ScheduledSends(rt);
      const env = envelope();
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const worker = new Worker<ScheduledJob>(SCHEDULE_QUEUE, async () => Promise.reject(new UnrecoverableError('publish refused')), {
        connection,
        prefix: schedulePrefix(rt),
      });
      const queue = new Queue<ScheduledJob>(SCHEDULE_QUEUE, { connection: redis, prefix: schedulePrefix(rt) });
      try {
        await sends.add([{ ...env, sendAt: new Date().toISOString() }]);
        const job = await waitFor(
          async () => {
            const j = await queue.getJob(env.id);
            return j && (await j.getState()) === 'failed' ? j : null;
          },
          { what: 'the scheduled job to fail' },
        );
        expect(job.opts.removeOnFail).to.deep.equal({ age: FAILED_JOB_RETENTION_S });
        expect(FAILED_JOB_RETENTION_S).to.be.at.most(30 * 24 * 3600);
      } finally {
        await worker.close();
        await queue.close();
        await sends.close();
        connection.disconnect();
      }
    });
  });
});
