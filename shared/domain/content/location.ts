/**
 * Location messages: a point (latitude −90…90, longitude −180…180) with an optional name and address.
 * Meta's own examples send coordinates both as numbers and as numeric strings, so both are taken, and
 * delivered as given.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/messages/location-messages
 */
import { z } from 'zod';

const NUMERIC = /^\s*-?\d+(\.\d+)?\s*$/;

function coordinate(max: number) {
  return z
    .union([z.number(), z.string().regex(NUMERIC, 'must be a number')], { message: 'must be a number' })
    .refine((v) => Number.isFinite(Number(v)) && Math.abs(Number(v)) <= max, { message: `must be between -${max} and ${max}` });
}

export const location = z
  .object({
    latitude: coordinate(90),
    longitude: coordinate(180),
    name: z.string().min(1).max(1000).optional(),
    address: z.string().min(1).max(1000).optional(),
  })
  .strict();
