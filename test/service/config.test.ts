import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICE_NODE_FLAGS, ServiceConfigError, loadServiceConfig } from '../../service/config';

const valid = {
  DATABASE_URL: 'postgres://u@127.0.0.1:5432/shop',
  PAYMENT_URL: 'http://127.0.0.1:4001',
  RECOMMENDATIONS_URL: 'http://127.0.0.1:4002',
  ORDER_EVENTS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111111111111/order-events',
  PAYMENT_RETRY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111111111111/payment-retry',
  ADMIN_TOKEN: 'x'.repeat(32),
};

describe('service configuration', () => {
  test('a minimal environment gets the production defaults', () => {
    const config = loadServiceConfig(valid);
    expect(config).toMatchObject({
      PORT: 8080,
      DB_POOL_SIZE: 20,
      PAYMENT_ATTEMPT_TIMEOUT_MS: 2_000,
      PAYMENT_RETRIES: 2,
      PAYMENT_BREAKER_THRESHOLD: 5,
      RECOMMENDATIONS_TIMEOUT_MS: 300,
      CURRENCY: 'USD',
    });
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['a MySQL URL', { DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres:\/\/ connection string/],
    [
      'a non-numeric timeout',
      { PAYMENT_ATTEMPT_TIMEOUT_MS: 'soon' },
      /PAYMENT_ATTEMPT_TIMEOUT_MS: must be a number of milliseconds/,
    ],
    ['a zero pool', { DB_POOL_SIZE: '0' }, /DB_POOL_SIZE: must be at least 2/],
    ['an out-of-range port', { PORT: '70000' }, /PORT: must be at most 65535/],
    ['a lower-case currency', { CURRENCY: 'usd' }, /CURRENCY: must be an ISO 4217 code/],
    [
      'backoff max below initial',
      { PAYMENT_BACKOFF_INITIAL_MS: '500', PAYMENT_BACKOFF_MAX_MS: '100' },
      /PAYMENT_BACKOFF_MAX_MS: must be at least PAYMENT_BACKOFF_INITIAL_MS \(500\)/,
    ],
  ])('rejects %s, naming the variable', (_name, change, message) => {
    expect(() => loadServiceConfig({ ...valid, ...change })).toThrow(message);
  });

  test('lists every missing variable at once', () => {
    try {
      loadServiceConfig({});
      throw new Error('expected a ServiceConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ServiceConfigError);
      expect((err as ServiceConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual(
        [
          'ADMIN_TOKEN',
          'DATABASE_URL',
          'ORDER_EVENTS_QUEUE_URL',
          'PAYMENT_RETRY_QUEUE_URL',
          'PAYMENT_URL',
          'RECOMMENDATIONS_URL',
        ].sort(),
      );
    }
  });

  test('an empty variable counts as unset', () => {
    expect(loadServiceConfig({ ...valid, PORT: '' }).PORT).toBe(8080);
  });
});

describe('service runtime flags', () => {
  test('`npm run service` runs with the same Node.js flags as the fleet and the benchmark', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(SERVICE_NODE_FLAGS).toContain('--max-old-space-size=128');
    expect(pkg.scripts.service).toBe(`node ${SERVICE_NODE_FLAGS.join(' ')} --import tsx service/main.ts`);
  });
});
