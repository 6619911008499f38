import { BrokenCircuitError, BulkheadRejectedError, TaskCancelledError } from 'cockatiel';

/**
 * Named errors of the checkout service, and the one place that decides what a payment
 * failure means ({@link classifyPaymentFailure} and {@link PAYMENT_FAILURE_HANDLING}):
 * the retry policy, the circuit breaker and the checkout's reply all read it.
 */

/** Base of the service's errors: named after its class, and keeps `cause` when it wraps one. */
export class CheckoutServiceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * One payment attempt failed in a way another attempt may not: 5xx, 408, 409, 429, a
 * connection error, an unreadable answer.
 */
export class TransientPaymentError extends CheckoutServiceError {
  constructor(
    message: string,
    /** The gateway's HTTP status, when it answered. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One payment attempt ran past its timeout and was abandoned (its AbortSignal fired). */
export class PaymentTimeoutError extends TransientPaymentError {}

/** The gateway declined the charge (402): the customer's card said no. */
export class PaymentDeclinedError extends CheckoutServiceError {
  constructor(readonly reason: string) {
    super(`payment declined: ${reason}`);
  }
}

/**
 * The gateway refused the request itself (any 4xx other than 402, 408, 409 and 429):
 * wrong credentials (401), missing permission (403), a request it cannot parse (400).
 * Not the customer's fault, and not fixed by trying again: the operator's problem.
 */
export class PaymentRejectedError extends CheckoutServiceError {
  constructor(
    readonly status: number,
    /** What the gateway said, for the logs; never shown to customers. */
    readonly detail: string,
  ) {
    super(`payment gateway rejected the request with ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** What a payment failure is. */
export type PaymentFailure =
  /** Worth another attempt: 5xx, timeout, connection error. */
  | 'transient'
  /** A real decline (402). */
  | 'declined'
  /** The gateway refused our request (401/403/400...): misconfiguration. */
  | 'rejected'
  /** The breaker is open (or half-open with its trial under way): the gateway was not called. */
  | 'circuit-open'
  /** The payment bulkhead and its queue are full: the gateway was not called. */
  | 'bulkhead-full'
  /** Anything else: a defect; it propagates. */
  | 'unexpected';

/** Decides what a payment error is. The only place that does. */
export function classifyPaymentFailure(err: unknown): PaymentFailure {
  if (err instanceof TransientPaymentError || err instanceof TaskCancelledError) return 'transient';
  if (err instanceof PaymentDeclinedError) return 'declined';
  if (err instanceof PaymentRejectedError) return 'rejected';
  if (err instanceof BrokenCircuitError) return 'circuit-open';
  if (err instanceof BulkheadRejectedError) return 'bulkhead-full';
  return 'unexpected';
}

/** How the payment client treats one kind of failure. */
export interface PaymentFailureHandling {
  /** The retry policy tries again. */
  readonly retry: boolean;
  /** The circuit breaker counts it as a failed call. */
  readonly opensBreaker: boolean;
}

/**
 * What each kind of failure does.
 *
 * Rejections are not retried (the same request gets the same refusal) but they do
 * count against the breaker: a misconfiguration refuses every call, and an open breaker
 * then defers orders to payment-retry without sending the gateway a request a second
 * for every checkout (and a half-open trial shows when the fix is in). One stray 400
 * among successes does not open it, since the breaker counts consecutive failures.
 * Declines are the gateway working as intended: neither retried nor counted.
 */
export const PAYMENT_FAILURE_HANDLING: Readonly<Record<PaymentFailure, PaymentFailureHandling>> = {
  transient: { retry: true, opensBreaker: true },
  rejected: { retry: false, opensBreaker: true },
  declined: { retry: false, opensBreaker: false },
  'circuit-open': { retry: false, opensBreaker: false },
  'bulkhead-full': { retry: false, opensBreaker: false },
  unexpected: { retry: false, opensBreaker: false },
};

/** For the retry policy: whether to attempt the payment again after this error. */
export const shouldRetryPayment = (err: unknown): boolean =>
  PAYMENT_FAILURE_HANDLING[classifyPaymentFailure(err)].retry;

/** For the circuit breaker: whether this error counts as a failed call. */
export const opensPaymentBreaker = (err: unknown): boolean =>
  PAYMENT_FAILURE_HANDLING[classifyPaymentFailure(err)].opensBreaker;

/** The error for a gateway HTTP status that is not a success. */
export function paymentErrorForStatus(status: number, detail: string): CheckoutServiceError {
  if (status === 402) return new PaymentDeclinedError(detail || 'declined');
  if (status >= 500 || status === 408 || status === 409 || status === 429) {
    return new TransientPaymentError(`payment gateway answered ${status}`, status);
  }
  return new PaymentRejectedError(status, detail);
}
