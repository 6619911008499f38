import { RecommendationsResult } from '../recommendations-client';

/** What the HTTP layer sends back for a checkout. */
export interface CheckoutReply {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
  /** Sent as Retry-After: the client should retry with the same Idempotency-Key. */
  readonly retryAfterSeconds?: number;
  /**
   * Set when this is the reply an earlier request (or the stuck-order sweep) stored under
   * the key, answered again (an idempotent replay); not sent. For the `checkout` log line.
   */
  readonly replayed?: true;
}

/**
 * What a checkout came to, as its one `checkout` log line says (`outcome`; the HTTP
 * status is `status`, the reply's status or error code is `code`):
 *
 * - `CONFIRMED`: 201, charged; `DEFERRED`: 201 PENDING_PAYMENT, handed to payment-retry;
 *   `DECLINED`: 402;
 * - `REPLAYED`: the reply stored under the key by an earlier request, whatever it was;
 * - `REJECTED`: any other 4xx (invalid request, out of stock, key reused, body too large);
 * - `FAILED`: a 5xx (database unreachable, a duplicate still in progress, the gateway
 *   refusing our request).
 *
 * Shed requests (503 OVERLOADED) are counted (`RequestsShed`), not logged.
 */
export type CheckoutOutcome = 'CONFIRMED' | 'DEFERRED' | 'DECLINED' | 'REPLAYED' | 'REJECTED' | 'FAILED';

/** The {@link CheckoutOutcome} of a reply. */
export function checkoutOutcome(reply: CheckoutReply): CheckoutOutcome {
  if (reply.replayed) return 'REPLAYED';
  return outcomeOfStatus(reply.statusCode, reply.body.status);
}

/** The {@link CheckoutOutcome} of an HTTP status (and, for a 201, the order status it answered). */
export function outcomeOfStatus(statusCode: number, orderStatus?: unknown): CheckoutOutcome {
  if (statusCode === 201) return orderStatus === 'CONFIRMED' ? 'CONFIRMED' : 'DEFERRED';
  if (statusCode === 402) return 'DECLINED';
  return statusCode >= 500 ? 'FAILED' : 'REJECTED';
}

/** Order statuses a checkout answers 201 with. */
export type AcceptedStatus = 'CONFIRMED' | 'PENDING_PAYMENT';

export function accepted(
  orderId: string,
  status: AcceptedStatus,
  recs: RecommendationsResult,
): CheckoutReply {
  return {
    statusCode: 201,
    body: {
      orderId,
      status,
      recommendations: recs.items,
      degraded: recs.degraded ? DEGRADED_RECOMMENDATIONS : NOT_DEGRADED,
    },
  };
}

const DEGRADED_RECOMMENDATIONS: readonly string[] = ['recommendations'];
const NOT_DEGRADED: readonly string[] = [];

export function declined(orderId: string, reason: string): CheckoutReply {
  return { statusCode: 402, body: { error: 'PAYMENT_DECLINED', orderId, reason } };
}

export function outOfStock(sku: string, reason: 'unknown-sku' | 'insufficient-stock'): CheckoutReply {
  return { statusCode: 409, body: { error: 'OUT_OF_STOCK', sku, reason } };
}

export function invalidRequest(message: string): CheckoutReply {
  return { statusCode: 400, body: { error: 'INVALID_REQUEST', message } };
}

export const KEY_REUSED: CheckoutReply = {
  statusCode: 422,
  body: {
    error: 'IDEMPOTENCY_KEY_REUSED',
    message: 'this Idempotency-Key was used with a different body',
  },
};

export function inProgress(retryAfterSeconds: number): CheckoutReply {
  return {
    statusCode: 503,
    body: {
      error: 'REQUEST_IN_PROGRESS',
      message: 'a request with this Idempotency-Key is still being processed',
    },
    retryAfterSeconds,
  };
}

/**
 * The payment gateway refused the service's request (401/403/400...): a
 * misconfiguration, not the customer's card. Nothing is stored under the key, so the
 * same request retried after the fix pays for the same order.
 */
export function gatewayRejected(retryAfterSeconds: number): CheckoutReply {
  return {
    statusCode: 503,
    body: {
      error: 'PAYMENT_GATEWAY_REJECTED',
      message:
        'the payment could not be attempted; the order is kept: retry with the same Idempotency-Key after the given delay',
    },
    retryAfterSeconds,
  };
}
