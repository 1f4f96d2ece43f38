import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpBotHandler } from '../../services/dispatcher/bot-handler.js';
import { ProviderClient } from '../../services/sender/provider-client.js';
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { ClassifiedError, PoisonMessageError, TransientError } from '../../shared/failures/errors.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { DispatcherMetrics } from '../../services/dispatcher/metrics.js';
import type { StageContext } from '../../shared/stage/worker.js';

/**
 * Outbound calls have one deadline for the whole call and a cap on the answer's size (issue #25):
 * a real local server that never answers, trickles a body forever, or answers too much.
 */
const TIMEOUT_MS = 800;
const MAX_BYTES = 4096;
/** Timers and a loaded test machine; far below what a hang would take. */
const MARGIN_MS = 400;

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const OK_BODY = JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.OK' }], replies: [{ type: 'text', text: { body: 'hi' } }] });

const BEHAVIOURS: Record<string, Behaviour> = {
  silent: () => {},
  // Each byte comes well within undici's per-chunk bodyTimeout: only an overall deadline ends it.
  trickle: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"messages":[');
    const t = setInterval(() => res.write(' '), TIMEOUT_MS / 8);
    res.on('close', () => clearInterval(t));
  },
  'huge-declared': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"pad":"${'x'.repeat(4 * MAX_BYTES)}"}`),
  'huge-chunked': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < 8; i++) res.write(`"${'x'.repeat(MAX_BYTES / 2)}"`);
    res.end();
  },
  // A valid answer in several chunks, under the cap.
  'ok-chunked': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const third = Math.ceil(OK_BODY.length / 3);
    res.write(OK_BODY.slice(0, third));
    setImmediate(() => {
      res.write(OK_BODY.slice(third, 2 * third));
      setImmediate(() => res.end(OK_BODY.slice(2 * third)));
    });
  },
};

async function startServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    // The behaviour is named by a part of the path: the bot handler's last, the Cloud API's phone number id.
    const name = (req.url ?? '').split('/').find((part) => part in BEHAVIOURS);
    if (name) BEHAVIOURS[name](req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The failure of `call` and how long it took; fails the test if it succeeded. */
async function failure(call: () => Promise<unknown>): Promise<{ err: ClassifiedError; ms: number }> {
  const started = Date.now();
  const err = await call().then(
    () => expect.fail('the call should have failed'),
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(ClassifiedError);
  return { err: err as ClassifiedError, ms: Date.now() - started };
}

const envelope = (kind: 'outbound' | 'inbound'): Envelope =>
  newEnvelope({ kind, user: '15558880001', priority: 'normal', payload: { type: 'text', text: { body: 'hi' } } });

describe('outbound HTTP: overall deadline and answer size cap', function () {
  this.timeout(20_000);
  let server: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  describe('the Cloud API client', () => {
    const clients: ProviderClient[] = [];
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
    });
    const client = (behaviour: string) => {
      const c = new ProviderClient({
        baseUrl: `${server.url}/graph`,
        graphApiVersion: 'v21.0',
        phoneNumberId: behaviour,
        accessToken: 't',
        timeoutMs: TIMEOUT_MS,
        maxResponseBytes: MAX_BYTES,
      });
      clients.push(c);
      return c;
    };
    const send = (behaviour: string) => client(behaviour).send(envelope('outbound'));

    for (const behaviour of ['silent', 'trickle']) {
      it(`fails a call whose server is ${behaviour} as transient (timeout) within PROVIDER_TIMEOUT_MS`, async () => {
        const { err, ms } = await failure(() => send(behaviour));
        expect(err).to.be.instanceOf(TransientError);
        expect(err.code).to.equal('timeout');
        expect(err.message).to.include('PROVIDER_TIMEOUT_MS');
        expect(ms).to.be.within(TIMEOUT_MS - 50, TIMEOUT_MS + MARGIN_MS);
      });
    }

    for (const behaviour of ['huge-declared', 'huge-chunked']) {
      it(`fails an answer over the cap (${behaviour}) as transient, without waiting for the deadline`, async () => {
        const { err, ms } = await failure(() => send(behaviour));
        expect(err).to.be.instanceOf(TransientError);
        expect(err.code).to.equal('response-too-large');
        expect(err.message).to.include(`larger than PROVIDER_MAX_RESPONSE_BYTES (${MAX_BYTES} bytes)`);
        expect(ms).to.be.below(TIMEOUT_MS);
      });
    }

    it('reads an answer under the cap that comes in several chunks', async () => {
      expect(await send('ok-chunked')).to.deep.equal({ wamid: 'wamid.OK', status: 200 });
    });
  });

  describe('the bot handler client', () => {
    const ctx = { log: silentLogger() } as unknown as StageContext;
    const handler = (behaviour: string) => new HttpBotHandler(`${server.url}/bot/${behaviour}`, TIMEOUT_MS, new DispatcherMetrics('dispatcher'), '', MAX_BYTES);
    const handle = (behaviour: string) => handler(behaviour).handle(envelope('inbound'), ctx);

    for (const behaviour of ['silent', 'trickle']) {
      it(`fails a call whose handler is ${behaviour} as transient (timeout) within BOT_HANDLER_TIMEOUT_MS`, async () => {
        const { err, ms } = await failure(() => handle(behaviour));
        expect(err).to.be.instanceOf(TransientError);
        expect(err.code).to.equal('timeout');
        expect(err.message).to.include('BOT_HANDLER_TIMEOUT_MS');
        expect(ms).to.be.within(TIMEOUT_MS - 50, TIMEOUT_MS + MARGIN_MS);
      });
    }

    for (const behaviour of ['huge-declared', 'huge-chunked']) {
      it(`fails a 2xx answer over the cap (${behaviour}) as poison, without waiting for the deadline`, async () => {
        const { err, ms } = await failure(() => handle(behaviour));
        expect(err).to.be.instanceOf(PoisonMessageError);
        expect(err.code).to.equal('handler-answer-too-large');
        expect(err.message).to.include(`BOT_HANDLER_MAX_RESPONSE_BYTES (${MAX_BYTES} bytes)`);
        expect(ms).to.be.below(TIMEOUT_MS);
      });
    }

    it('reads an answer under the cap that comes in several chunks', async () => {
      expect(await handle('ok-chunked')).to.deep.equal([{ type: 'text', text: { body: 'hi' } }]);
    });
  });
});
