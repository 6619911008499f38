import { BrokenCircuitError, BulkheadRejectedError, TaskCancelledError } from 'cockatiel';
import {
  CheckoutServiceError,
  PAYMENT_FAILURE_HANDLING,
  PaymentDeclinedError,
  PaymentRejectedError,
  PaymentTimeoutError,
  TransientPaymentError,
  classifyPaymentFailure,
  opensPaymentBreaker,
  paymentErrorForStatus,
  shouldRetryPayment,
} from '../../service/errors';

describe('payment failure classification', () => {
  test.each([
    [402, 'declined'],
    [400, 'rejected'],
    [401, 'rejected'],
    [403, 'rejected'],
    [404, 'rejected'],
    [422, 'rejected'],
    [408, 'transient'],
    [409, 'transient'],
    [429, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
  ])('a gateway %i is %s', (status, kind) => {
    expect(classifyPaymentFailure(paymentErrorForStatus(status, 'detail'))).toBe(kind);
  });

  test('cockatiel and unknown errors', () => {
    expect(classifyPaymentFailure(new BrokenCircuitError())).toBe('circuit-open');
    expect(classifyPaymentFailure(new BulkheadRejectedError(1, 0))).toBe('bulkhead-full');
    expect(classifyPaymentFailure(new TaskCancelledError())).toBe('transient');
    expect(classifyPaymentFailure(new PaymentTimeoutError('timed out'))).toBe('transient');
    expect(classifyPaymentFailure(new TypeError('bug'))).toBe('unexpected');
    expect(classifyPaymentFailure(undefined)).toBe('unexpected');
  });

  test('only transient failures are retried; transient failures and rejections open the breaker', () => {
    const retried = Object.entries(PAYMENT_FAILURE_HANDLING).filter(([, h]) => h.retry);
    const counted = Object.entries(PAYMENT_FAILURE_HANDLING).filter(([, h]) => h.opensBreaker);
    expect(retried.map(([kind]) => kind)).toEqual(['transient']);
    expect(counted.map(([kind]) => kind).sort()).toEqual(['rejected', 'transient']);
    expect(shouldRetryPayment(new PaymentRejectedError(401, ''))).toBe(false);
    expect(opensPaymentBreaker(new PaymentRejectedError(401, ''))).toBe(true);
    expect(shouldRetryPayment(new PaymentDeclinedError('card_declined'))).toBe(false);
    expect(opensPaymentBreaker(new PaymentDeclinedError('card_declined'))).toBe(false);
    expect(shouldRetryPayment(new BrokenCircuitError())).toBe(false);
  });
});

describe('named errors', () => {
  test('share one base, are named after their class and keep their cause', () => {
    const cause = new Error('ECONNRESET');
    const err = new TransientPaymentError('payment gateway unreachable', undefined, { cause });
    expect(err).toBeInstanceOf(CheckoutServiceError);
    expect(err.name).toBe('TransientPaymentError');
    expect(err.cause).toBe(cause);
    const timeout = new PaymentTimeoutError('timed out', undefined, { cause });
    expect(timeout).toBeInstanceOf(TransientPaymentError);
    expect(timeout.name).toBe('PaymentTimeoutError');
    expect(timeout.cause).toBe(cause);
  });

  test('a rejection names the status and what the gateway said', () => {
    const err = paymentErrorForStatus(401, 'Invalid API Key');
    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect(err.message).toMatch(/rejected the request with 401: Invalid API Key/);
  });

  test('a decline keeps the reason, or says declined', () => {
    expect((paymentErrorForStatus(402, 'card_declined') as PaymentDeclinedError).reason).toBe(
      'card_declined',
    );
    expect((paymentErrorForStatus(402, '') as PaymentDeclinedError).reason).toBe('declined');
  });
});
