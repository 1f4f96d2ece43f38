import { expect } from 'chai';
import { classifyNetworkError, classifyProviderError, parseRetryAfter } from '../../shared/failures/classify.js';
import { PermanentError, PoisonMessageError, ThrottledError, TransientError, WindowClosedError, asClassified } from '../../shared/failures/errors.js';
import { decideFate } from '../../shared/failures/fate.js';

const TIERS = [1000, 5000, 30_000, 120_000, 600_000];
const body = (code: number) => ({ error: { message: 'x', type: 'OAuthException', code, fbtrace_id: 'f' } });

describe('failure classes and the fate of a failed message', () => {
  it('maps the Cloud API codes to their failure classes', () => {
    for (const code of [130429, 131056, 80007, 131057]) expect(classifyProviderError(429, body(code))).to.be.instanceOf(TransientError);
    for (const code of [131026, 131051, 131008, 131009, 131021, 368, 190]) {
      const e = classifyProviderError(400, body(code));
      expect(e, String(code)).to.be.instanceOf(PermanentError);
      expect(e.code).to.equal(String(code));
    }
  });

  it('gives 131047 (outside the customer-service window) its own class, dead-lettered at once', () => {
    const e = classifyProviderError(400, body(131047));
    expect(e).to.be.instanceOf(WindowClosedError);
    expect(e).to.include({ failureClass: 'window-closed', code: '131047' });
    expect(decideFate(e, 0, TIERS)).to.deep.equal({ action: 'dead', attempt: 1, reason: 'window-closed' });
  });

  it('maps bare HTTP statuses: 5xx, 408 and 429 transient, other 4xx permanent', () => {
    expect(classifyProviderError(503, undefined)).to.be.instanceOf(TransientError);
    expect(classifyProviderError(503, undefined).code).to.equal('http-503');
    expect(classifyProviderError(408, undefined)).to.be.instanceOf(TransientError);
    expect(classifyProviderError(429, undefined)).to.be.instanceOf(TransientError);
    expect(classifyProviderError(404, undefined)).to.be.instanceOf(PermanentError);
  });

  it('honours Retry-After in seconds and as an HTTP date', () => {
    expect(parseRetryAfter('7')).to.equal(7000);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now())).to.be.within(8000, 10_000);
    expect(classifyProviderError(429, body(130429), '3').retryAfterMs).to.equal(3000);
  });

  it('treats network errors and unknown exceptions as transient, keeping the cause', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const e = classifyNetworkError(cause);
    expect(e).to.be.instanceOf(TransientError);
    expect(e.cause).to.equal(cause);
    expect(asClassified(new Error('boom'))).to.be.instanceOf(TransientError);
  });

  it('climbs the tiers one attempt at a time, then dead-letters as exhausted', () => {
    const err = new TransientError('503', { code: 'http-503' });
    expect(decideFate(err, 0, TIERS)).to.deep.equal({ action: 'retry', tierIndex: 0, tierMs: 1000, attempt: 1 });
    expect(decideFate(err, 1, TIERS)).to.deep.equal({ action: 'retry', tierIndex: 1, tierMs: 5000, attempt: 2 });
    expect(decideFate(err, 4, TIERS)).to.deep.equal({ action: 'retry', tierIndex: 4, tierMs: 600_000, attempt: 5 });
    expect(decideFate(err, 5, TIERS)).to.deep.equal({ action: 'dead', attempt: 6, reason: 'exhausted' });
  });

  it('lets Retry-After push a retry to a longer tier', () => {
    const err = new TransientError('429', { code: '130429', retryAfterMs: 20_000 });
    expect(decideFate(err, 0, TIERS)).to.include({ action: 'retry', tierMs: 30_000, attempt: 1 });
  });

  it('re-tiers a throttled message without counting an attempt, in the longest tier not beyond the wait', () => {
    const pair = new ThrottledError('wait', { code: 'limit-pair', retryAfterMs: 6000 });
    expect(decideFate(pair, 2, TIERS)).to.deep.equal({ action: 'retry', tierIndex: 1, tierMs: 5000, attempt: 2 });
    const short = new ThrottledError('wait', { code: 'limit-number', retryAfterMs: 300 });
    expect(decideFate(short, 0, TIERS)).to.deep.equal({ action: 'retry', tierIndex: 0, tierMs: 1000, attempt: 0 });
  });

  it('dead-letters permanent and poison failures at once', () => {
    expect(decideFate(new PermanentError('no', { code: '131026' }), 0, TIERS)).to.deep.equal({ action: 'dead', attempt: 1, reason: 'permanent' });
    expect(decideFate(new PoisonMessageError('bad', { code: 'invalid-envelope' }), 0, TIERS)).to.deep.equal({ action: 'dead', attempt: 1, reason: 'poison' });
  });
});
