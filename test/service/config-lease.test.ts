import { ServiceConfigError, checkoutWorstCaseMs, loadServiceConfig } from '../../service/config';

/** The idempotency lease must outlast the longest checkout (issue 9, defect 1). */
describe('IDEMPOTENCY_LEASE_MS', () => {
  const env = (overrides: Record<string, string> = {}) => ({
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/shop',
    PAYMENT_URL: 'http://127.0.0.1:4001',
    RECOMMENDATIONS_URL: 'http://127.0.0.1:4002',
    ORDER_EVENTS_QUEUE_URL: 'http://127.0.0.1:4003/queue/order-events',
    PAYMENT_RETRY_QUEUE_URL: 'http://127.0.0.1:4003/queue/payment-retry',
    ADMIN_TOKEN: 'x'.repeat(32),
    ...overrides,
  });

  test('the defaults leave room: 5 s statement + 3 x 2 s attempts + 2 x 1 s backoff = 13 s < 30 s', () => {
    const config = loadServiceConfig(env());
    expect(checkoutWorstCaseMs(config)).toBe(13_000);
    expect(config.IDEMPOTENCY_LEASE_MS).toBe(30_000);
  });

  test('an 11 s attempt timeout with 2 retries outlasts the 30 s lease: refused, naming both variables', () => {
    const load = () => loadServiceConfig(env({ PAYMENT_ATTEMPT_TIMEOUT_MS: '11000' }));
    expect(load).toThrow(ServiceConfigError);
    expect(load).toThrow(
      /IDEMPOTENCY_LEASE_MS: is 30000 but a checkout may hold its key for 40000 ms .*PAYMENT_ATTEMPT_TIMEOUT_MS 11000/,
    );
  });

  test('accepted once the lease covers the worst case', () => {
    const config = loadServiceConfig(
      env({ PAYMENT_ATTEMPT_TIMEOUT_MS: '11000', IDEMPOTENCY_LEASE_MS: '40000' }),
    );
    expect(config.IDEMPOTENCY_LEASE_MS).toBe(40_000);
  });

  test('the recommendations timeout counts when it is longer than the payment', () => {
    expect(
      checkoutWorstCaseMs({
        DB_STATEMENT_TIMEOUT_MS: 1_000,
        PAYMENT_ATTEMPT_TIMEOUT_MS: 100,
        PAYMENT_RETRIES: 0,
        PAYMENT_BACKOFF_MAX_MS: 100,
        RECOMMENDATIONS_TIMEOUT_MS: 2_000,
      }),
    ).toBe(3_000);
  });
});
