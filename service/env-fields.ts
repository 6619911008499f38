import { z } from 'zod';

/**
 * Field parsers shared by the service's environment schemas, so every variable of one
 * kind reports the same message.
 */

/** An http(s) URL of the named dependency. */
export const url = (what: string) =>
  z.url({ protocol: /^https?$/, error: `must be an http(s) URL of the ${what}` });

/** A whole number of milliseconds within [min, max]. */
export const ms = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(min, `must be at least ${min} ms`)
    .max(max, `must be at most ${max} ms`);

/** A whole number within [min, max]. */
export const count = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
