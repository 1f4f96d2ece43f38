import { expect } from 'chai';
import { EnvelopeError, newEnvelope, parseEnvelope } from '../../shared/domain/envelope.js';

const good = () => newEnvelope({ kind: 'outbound', user: '15551234567', priority: 'normal', payload: { type: 'text', text: { body: 'hi' } } });

describe('envelope', () => {
  it('round-trips a valid envelope with a ULID id and attempt 0', () => {
    const env = good();
    expect(env.id).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(env.attempt).to.equal(0);
    expect(parseEnvelope(Buffer.from(JSON.stringify(env)))).to.deep.equal(env);
  });

  const bad: Array<[string, (e: Record<string, unknown>) => unknown, RegExp]> = [
    ['a body that is not JSON', () => '{nope', /not JSON/],
    ['a missing user', (e) => ({ ...e, user: undefined }), /user/],
    ['a user that is not a phone number', (e) => ({ ...e, user: 'alice' }), /user/],
    ['an unknown kind', (e) => ({ ...e, kind: 'fax' }), /kind/],
    ['an unknown priority', (e) => ({ ...e, priority: 'asap' }), /priority/],
    ['an urgency above 9', (e) => ({ ...e, urgency: 12 }), /urgency/],
    ['an id that is not a ULID', (e) => ({ ...e, id: 'abc' }), /id/],
    ['an unknown field', (e) => ({ ...e, extra: 1 }), /extra|Unrecognized/],
    ['a negative attempt', (e) => ({ ...e, attempt: -1 }), /attempt/],
  ];
  for (const [what, mutate, field] of bad) {
    it(`rejects ${what}, naming the field`, () => {
      const v = mutate(good() as unknown as Record<string, unknown>);
      const buf = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
      expect(() => parseEnvelope(buf)).to.throw(EnvelopeError, field);
    });
  }
});
