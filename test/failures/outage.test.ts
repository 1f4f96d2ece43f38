import { expect } from 'chai';
import { BrokerUnavailableError } from '../../shared/amqp/broker.js';
import { PermanentError, ThrottledError, TransientError } from '../../shared/failures/errors.js';
import { outageOf } from '../../shared/failures/outage.js';

describe('failures/outage: what counts as an outage of a dependency (waited out in place, never re-tiered)', () => {
  const timedOut = new Error('Command timed out');
  it('names Redis for its own codes, the rate limiters’ unavailable counters, ioredis’s command timeouts and give-ups, and a loading Redis', () => {
    expect(outageOf(new ThrottledError('dedup store unavailable', { code: 'redis-unavailable' }))).to.equal('redis');
    expect(
      outageOf(new ThrottledError('rate limit throughput: counter unavailable (Command timed out)', { code: 'limit-unavailable', cause: timedOut })),
    ).to.equal('redis');
    expect(outageOf(timedOut)).to.equal('redis');
    expect(outageOf(Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }))).to.equal('redis');
    expect(outageOf(Object.assign(new Error('LOADING Redis is loading the dataset in memory'), { name: 'ReplyError' }))).to.equal('redis');
    expect(outageOf(new TransientError('wrapped', { code: 'x', cause: new Error('y', { cause: timedOut }) }))).to.equal('redis');
  });

  it('names the broker for an unreachable or blocking broker, not for a nack', () => {
    expect(outageOf(new BrokerUnavailableError('down', 'disconnected'))).to.equal('broker');
    expect(outageOf(new BrokerUnavailableError('alarm', 'blocked'))).to.equal('broker');
    expect(outageOf(new BrokerUnavailableError('refused', 'nack'))).to.equal(null);
  });

  it('leaves the message’s own failures to its fate: provider throttles and timeouts, permanent errors, other Redis replies', () => {
    expect(outageOf(new ThrottledError('provider throttled', { code: '130429' }))).to.equal(null);
    expect(outageOf(new TransientError('provider call not finished within PROVIDER_TIMEOUT_MS', { code: 'timeout' }))).to.equal(null);
    expect(outageOf(new PermanentError('bad number', { code: '131026' }))).to.equal(null);
    expect(outageOf(Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), { name: 'ReplyError' }))).to.equal(null);
    expect(outageOf(new Error('Command timed out after 5 s'))).to.equal(null);
  });
});
