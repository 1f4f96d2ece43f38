import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { strong } from './main-process.js';

const CURRENT = strong('current');
const PREVIOUS = strong('previous');

/** One request with the path sent byte for byte (fetch would normalise a bad percent-encoding). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the ingress at the edge', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let ingress: Ingress;
  /** GET of an unknown message's status: 404 once authenticated, 401 before. */
  const status = (authorization?: string) =>
    raw(ingress.port, 'GET', '/v1/messages/01K2Z8X4J6M3Q5R7T9V1W3Y5A7', authorization === undefined ? {} : { authorization });
  const metrics = async () => (await raw(ingress.metricsPort, 'GET', '/metrics')).body;

  before(async () => {
    iso = await isolate('security-edges');
    ingress = await startIngress(iso.config({ ingressApiToken: CURRENT, ingressApiTokenPrevious: PREVIOUS }));
  });
  after(async () => {
    await ingress?.close();
    await iso.cleanup();
  });

  describe('API token rotation', () => {
    it('accepts the current and the previous token, and refuses a third or none', async () => {
      expect((await status(`Bearer ${CURRENT}`)).status).to.equal(404);
      expect((await status(`Bearer ${PREVIOUS}`)).status).to.equal(404);
      expect((await status(`Bearer ${strong('third')}`)).status).to.equal(401);
      expect((await status(`Bearer ${CURRENT.slice(0, -1)}`)).status).to.equal(401);
      expect((await status()).status).to.equal(401);
    });

    it('matches the Bearer scheme case-insensitively (RFC 7235), and nothing else', async () => {
      for (const scheme of ['bearer', 'BEARER', 'bEaReR']) expect((await status(`${scheme} ${CURRENT}`)).status, scheme).to.equal(404);
      for (const bad of [`Basic ${CURRENT}`, `Bearer${CURRENT}`, `Bearer ${CURRENT} extra`, 'Bearer ']) expect((await status(bad)).status, bad).to.equal(401);
    });

    it('accepts only the current token once the previous one is cleared', async () => {
      const only = await startIngress(iso.config({ ingressApiToken: CURRENT }));
      try {
        const get = (token: string) => raw(only.port, 'GET', '/v1/messages/01K2Z8X4J6M3Q5R7T9V1W3Y5A7', { authorization: `Bearer ${token}` });
        expect((await get(CURRENT)).status).to.equal(404);
        expect((await get(PREVIOUS)).status).to.equal(401);
        expect((await get('')).status).to.equal(401);
      } finally {
        await only.close();
      }
    });
  });

  describe('postmaster_rejected_requests_total', () => {
    const labelSets = async () =>
      new Set(
        (await metrics())
          .split('\n')
          .filter((l) => l.startsWith('postmaster_rejected_requests_total{'))
          .map((l) => l.slice(0, l.lastIndexOf(' '))),
      );
    const word = () => randomBytes(6).toString('hex');
    const randomPath = (i: number): [string, string] => {
      switch (i % 6) {
        case 0:
          return ['GET', `/${word()}/${word()}`];
        case 1:
          return ['GET', `/v1/messages/%${word().slice(0, 1)}z${word()}`]; // bad percent-encoding in a route param
        case 2:
          return ['POST', `/%E0%A4%A${word()}`];
        case 3:
          return ['DELETE', `/v1/messages/${word()}`];
        case 4:
          return ['GET', `/v1/messages/${word()}${word()}${word()}`]; // a matched route without a token
        default:
          return ['POST', `/webhooks/${word()}?hub.mode=${word()}`];
      }
    };

    it('adds no label value for 200 random paths, bad percent-encodings included', async () => {
      for (let i = 0; i < 6; i++) await raw(ingress.port, ...randomPath(i));
      const before = await labelSets();
      expect(
        [...before].some((l) => l.includes('route="unmatched"')),
        [...before].join('\n'),
      ).to.equal(true);
      const answers = new Set<number>();
      for (let i = 0; i < 200; i++) answers.add((await raw(ingress.port, ...randomPath(i))).status);
      expect([...answers]).to.have.members([400, 401, 404]);
      expect([...(await labelSets())].sort()).to.deep.equal([...before].sort());
    });
  });

  describe('health and metrics', () => {
    it('does not serve /metrics on the public port', async () => {
      const res = await raw(ingress.port, 'GET', '/metrics');
      expect(res.status).to.equal(404);
      expect(res.body).not.to.contain('postmaster_');
      expect(await metrics()).to.match(/^postmaster_rejected_requests_total\{/m);
    });

    it('answers /healthz and /readyz on the public port without the failing checks, which METRICS_PORT has', async () => {
      const pub = JSON.parse((await raw(ingress.port, 'GET', '/readyz')).body) as Record<string, unknown>;
      expect(pub).to.deep.equal({ ready: true, broker: true, blocked: false });
      expect(JSON.parse((await raw(ingress.port, 'GET', '/healthz')).body)).to.deep.equal({ status: 'ok' });
      const inner = JSON.parse((await raw(ingress.metricsPort, 'GET', '/readyz')).body) as Record<string, unknown>;
      expect(inner).to.have.property('failing');
      expect((await raw(ingress.metricsPort, 'GET', '/healthz')).status).to.equal(200);
    });
  });
});
