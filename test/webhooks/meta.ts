/**
 * Test helpers for Meta's webhook: the fixtures (test/fixtures/whatsapp, copied from the shared
 * fixture set) and signing like Meta.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sign } from '../../services/ingress/signature.js';
import type { Fleet, HttpAnswer } from '../support/fleet.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/whatsapp');

/** The fixture's exact bytes (what Meta would have signed). */
export function fixture(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, name));
}

export function fixtureJson(name: string): any {
  return JSON.parse(fixture(name).toString('utf8'));
}

export function postWebhook(fleet: Fleet, raw: Buffer | string, signature?: string | null): Promise<HttpAnswer> {
  const sig = signature === undefined ? sign(raw, fleet.cfg.whatsappAppSecret) : signature;
  return fleet.call('POST', '/webhooks/whatsapp', {
    body: raw,
    token: null,
    headers: { 'content-type': 'application/json', ...(sig === null ? {} : { 'x-hub-signature-256': sig }) },
  });
}
