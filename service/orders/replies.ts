import { RecommendationsResult } from '../recommendations-client';

/** What the HTTP layer sends back for a checkout. */
export interface CheckoutReply {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
  /** Sent as Retry-After: the client should retry with the same Idempotency-Key. */
  readonly retryAfterSeconds?: number;
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
