import type { Logger } from '@aws-lambda-powertools/logger';
import { DownstreamError } from '../shared/errors';
import { WorkerConfigError } from '../shared/env';
import { recordScopedLogger } from '../shared/record-log';
import type { OrderEvent } from './schema';

/** What applying an event did; stored as the idempotency record's result. */
export interface AppliedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly orderId: string;
  /** `fulfilment`: the endpoint accepted it; `log`: no endpoint is configured, a log record was written. */
  readonly via: 'fulfilment' | 'log';
}

/** Applies one event to the outside world. Must be safe to call again for the same event. */
export type ApplyEvent = (event: OrderEvent) => Promise<AppliedEvent>;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Validates `FULFILMENT_URL`: HTTPS (the workers' security group lets only 443 out), or
 * plain HTTP to a loopback address, which only a local test can mean.
 */
export function parseFulfilmentUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WorkerConfigError(`FULFILMENT_URL "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new WorkerConfigError(`FULFILMENT_URL must be an https:// URL, got "${raw}"`);
  }
  return url;
}

/**
 * POSTs each event to the fulfilment endpoint with the event id as `Idempotency-Key`, so
 * the endpoint can drop the one duplicate the worker cannot rule out: a function that
 * dies after the endpoint accepted an event and before its idempotency record was marked
 * complete applies it again once the record's in-progress lease has expired.
 *
 * @param timeoutMs the whole request, connect to last byte; on expiry the event fails
 * (transient) and is retried with the rest of the queue's attempts
 */
export function httpFulfilment(url: URL, timeoutMs: number, fetchFn: typeof fetch = fetch): ApplyEvent {
  return async (event) => {
    let response: Response;
    try {
      response = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': event.eventId },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new DownstreamError(`fulfilment endpoint did not answer within ${timeoutMs} ms`, undefined, {
        cause: err,
      });
    }
    // Drain the body so the connection returns to the pool.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) {
      throw new DownstreamError(`fulfilment endpoint answered ${response.status}`, response.status);
    }
    return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'fulfilment' };
  };
}

/**
 * With no fulfilment endpoint configured, applying an event writes one structured log
 * record (with the record's keys when written while one is handled: ../shared/record-log.ts).
 */
export function logFulfilment(logger: Pick<Logger, 'info'>): ApplyEvent {
  const log = recordScopedLogger(logger);
  return async (event) => {
    log.info('order event applied (no FULFILMENT_URL set)', {
      eventId: event.eventId,
      type: event.type,
      orderId: event.orderId,
    });
    return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'log' };
  };
}
