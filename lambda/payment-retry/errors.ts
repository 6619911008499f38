import type { DeferralCause } from '../../service/payment-client';
import { DownstreamError, UnprocessableRecordError, WorkerError } from '../shared/errors';

/**
 * The payment was not taken and the order stays PENDING_PAYMENT: the gateway's breaker is
 * open, every attempt failed (5xx, timeout), or the bulkhead was full. Transient: the
 * record fails and SQS delivers it again after the visibility timeout, until
 * maxReceiveCount moves it to the dead-letter queue.
 */
export class PaymentNotTakenError extends WorkerError {
  constructor(
    readonly orderId: string,
    /** Why the client did not take it. */
    readonly deferral: DeferralCause,
  ) {
    super(`payment of order ${orderId} not taken (${deferral}); the order stays PENDING_PAYMENT`);
  }
}

/**
 * The gateway refused the request itself (401, 403, 400: a revoked or wrong API key, a
 * request it cannot parse), not the customer's card. Permanent for this configuration:
 * the order stays PENDING_PAYMENT with its stock held, the record reaches the dead-letter
 * queue, and `PaymentRequestsRejected` (alarmed on any) tells the operator, who fixes the
 * key and redrives.
 */
export class GatewayRejectedError extends DownstreamError {
  constructor(
    readonly orderId: string,
    status: number,
    options?: { cause?: unknown },
  ) {
    super(`payment gateway rejected the charge of order ${orderId} with ${status}`, status, options);
  }
}

/** The message names an order the database does not hold (a restore to an earlier point, a message from elsewhere). */
export class OrderNotFoundError extends UnprocessableRecordError {
  constructor(readonly orderId: string) {
    super(`order ${orderId} does not exist in this region's database`);
  }
}
