/**
 * Named errors of the checkout service. Whether a payment failure is transient
 * (worth retrying, counts against the breaker) is decided only in {@link isTransientPaymentFailure}.
 */

/** The gateway answered 5xx, 409, 429, reset the connection, or did not answer. */
export class TransientPaymentError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TransientPaymentError';
  }
}

/** The gateway declined the charge (402). Never retried. */
export class PaymentDeclinedError extends Error {
  constructor(readonly reason: string) {
    super(`payment declined: ${reason}`);
    this.name = 'PaymentDeclinedError';
  }
}

/** The gateway rejected the request itself (4xx other than 402/409/429). Never retried. */
export class PaymentRejectedError extends Error {
  constructor(readonly status: number) {
    super(`payment gateway rejected the request with ${status}`);
    this.name = 'PaymentRejectedError';
  }
}

/** Whether an error from one payment attempt is transient. */
export function isTransientPaymentFailure(err: unknown): boolean {
  return err instanceof TransientPaymentError;
}

/** Classifies a gateway HTTP status that is not a success. */
export function paymentErrorForStatus(status: number, reason: string): Error {
  if (status === 402) return new PaymentDeclinedError(reason || 'declined');
  if (status >= 500 || status === 409 || status === 429 || status === 408) {
    return new TransientPaymentError(`payment gateway answered ${status}`, status);
  }
  return new PaymentRejectedError(status);
}
