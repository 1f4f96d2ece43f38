import { expect } from 'chai';
import { sign } from '../../services/ingress/signature.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { totalDepth } from '../ingress/lanes.js';
import { fixture, postWebhook } from './meta.js';

describe('webhooks: verification and signatures', function () {
  const t = useFleet('wh-sig', { overrides: { whatsappAppSecret: 'app-secret-1', whatsappVerifyToken: 'verify-me' } });

  describe('GET /webhooks/whatsapp', () => {
    const verify = (q: string) => t.fleet.call('GET', `/webhooks/whatsapp?${q}`, { token: null });

    it('answers the challenge as text/plain when the verify token matches', async () => {
      const r = await verify('hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444');
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.match(/^text\/plain/);
      expect(r.text).to.equal('1158201444');
    });

    it('answers 403 to a wrong token, a wrong mode or none at all', async () => {
      for (const q of [
        'hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1',
        'hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1',
        'hub.verify_token=verify-me&hub.challenge=1',
        'hub.mode=subscribe&hub.challenge=1',
        'hub.mode=subscribe&hub.verify_token=verify-me&hub.verify_token=verify-me&hub.challenge=1',
        '',
      ]) {
        expect((await verify(q)).status, q).to.equal(403);
      }
    });
  });

  describe('POST /webhooks/whatsapp', () => {
    const raw = () => fixture('inbound-text.json');

    it('answers 401 without X-Hub-Signature-256 and publishes nothing', async () => {
      const r = await postWebhook(t.fleet, raw(), null);
      expect(r.status).to.equal(401);
      expect(await totalDepth(t.fleet)).to.equal(0);
    });

    it('answers 403 to a wrong or malformed signature and publishes nothing', async () => {
      for (const sig of [sign(raw(), 'another-secret'), 'sha256=abc', 'sha1=' + 'a'.repeat(40), sign(raw(), 'app-secret-1').replace('sha256=', '')]) {
        expect((await postWebhook(t.fleet, raw(), sig)).status, sig).to.equal(403);
      }
      expect(t.fleet.sim.ledger()).to.have.length(0);
    });

    it('delivers the echo reply of a signed inbound message, and nothing for a forged one', async () => {
      // Forged: a valid signature, but of a different body.
      const forgedBody = raw().toString('utf8').replace('Does it come in another color?', 'FORGED: send me everything');
      const forged = await postWebhook(t.fleet, forgedBody, sign(raw(), 'app-secret-1'));
      expect(forged.status).to.equal(403);

      const genuine = await postWebhook(t.fleet, raw());
      expect(genuine.status).to.equal(200);
      expect(genuine.body).to.include({ received: 1, published: 1, duplicates: 0 });
      const reply = await waitFor(() => t.fleet.sim.accepted().find((e) => e.to === '16505551234'), { what: 'the echo reply at the provider' });
      expect(reply.body).to.deep.include({ type: 'text', text: { body: 'echo: Does it come in another color?' } });
      // Everything the pipeline had is through: the forged body never got in.
      await waitFor(async () => (await totalDepth(t.fleet)) === 0, { what: 'empty dispatch lanes' });
      const toUser = t.fleet.sim.ledger().filter((e) => e.to === '16505551234');
      expect(toUser).to.have.length(1);
      expect(JSON.stringify(toUser[0].body)).not.to.include('FORGED');
    });

    it('answers 400 naming (body) to a signed body that is not JSON', async () => {
      const r = await postWebhook(t.fleet, '{"object":');
      expect(r.status).to.equal(400);
      expect(r.body.field).to.equal('(body)');
    });

    it('answers 200 to a signed notification it does not carry, publishing nothing', async () => {
      const r = await postWebhook(t.fleet, JSON.stringify({ object: 'page', entry: [] }));
      expect(r.status).to.equal(200);
      expect(r.body).to.include({ received: 0, published: 0 });
    });
  });
});
