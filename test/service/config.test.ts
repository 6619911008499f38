import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SERVICE_NODE_FLAGS,
  ServiceConfigError,
  loadDatabaseConfig,
  loadServiceConfig,
} from '../../service/config';

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
      DB_NAMED_STATEMENTS: false,
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

describe('database connection modes', () => {
  const withoutUrl = { ...valid, DATABASE_URL: '' }; // empty counts as unset
  const proxy = 'shop.proxy-abc123def456.us-east-1.rds.amazonaws.com';
  const iam = { ...withoutUrl, DB_IAM_AUTH: 'true', DB_HOST: proxy, AWS_REGION: 'us-east-1' };

  test('DATABASE_URL alone is the URL mode', () => {
    expect(loadServiceConfig(valid).database).toEqual({ mode: 'url', url: valid.DATABASE_URL });
  });

  test('IAM mode connects as checkout to the postgres database on 5432 unless told otherwise', () => {
    expect(loadServiceConfig(iam).database).toEqual({
      mode: 'iam',
      host: proxy,
      port: 5432,
      database: 'postgres',
      user: 'checkout',
      region: 'us-east-1',
    });
    expect(
      loadServiceConfig({ ...iam, DB_PORT: '6432', DB_NAME: 'shop', DB_USER: 'shop_admin' }).database,
    ).toMatchObject({ port: 6432, database: 'shop', user: 'shop_admin' });
  });

  test.each<[string, Record<string, string>, RegExp]>([
    [
      'both modes',
      { ...iam, DATABASE_URL: valid.DATABASE_URL },
      /DATABASE_URL: cannot be combined with DB_IAM_AUTH=true, DB_HOST \(two connection modes\); unset DATABASE_URL .* or unset DB_IAM_AUTH=true, DB_HOST to use the URL/,
    ],
    [
      'a DB_USER the URL would silently override',
      { ...valid, DB_USER: 'shop_admin' },
      /DATABASE_URL: cannot be combined with DB_USER/,
    ],
    [
      'neither mode',
      withoutUrl,
      /DATABASE_URL: is required \(a postgres:\/\/ connection string\), unless .* DB_IAM_AUTH=true, DB_HOST and AWS_REGION/,
    ],
    [
      'DB_HOST without DB_IAM_AUTH',
      { ...withoutUrl, DB_HOST: proxy },
      /DB_IAM_AUTH: must be true when DB_HOST is set .*; or set DATABASE_URL instead/,
    ],
    ['IAM mode without DB_HOST', { ...iam, DB_HOST: '' }, /DB_HOST: is required with DB_IAM_AUTH=true/],
    [
      'IAM mode without AWS_REGION',
      { ...iam, AWS_REGION: '' },
      /AWS_REGION: is required with DB_IAM_AUTH=true \(the RDS Proxy region; tokens are signed for it\)/,
    ],
    [
      'a region other than the proxy host says',
      { ...iam, AWS_REGION: 'eu-west-1' },
      /AWS_REGION: is eu-west-1 but DB_HOST is in us-east-1; set AWS_REGION=us-east-1/,
    ],
    [
      'DB_IAM_AUTH other than true/false',
      { ...iam, DB_IAM_AUTH: 'yes' },
      /DB_IAM_AUTH: must be true or false/,
    ],
    [
      'a DB_HOST with a scheme',
      { ...iam, DB_HOST: `postgres://${proxy}` },
      /DB_HOST: must be a host name, without scheme or port/,
    ],
    [
      'named statements through RDS Proxy (they pin every session)',
      { ...iam, DB_NAMED_STATEMENTS: 'true' },
      /DB_NAMED_STATEMENTS: must be false with DB_IAM_AUTH=true: .* RDS Proxy .* pins .*; set it only for a direct connection/,
    ],
  ])('rejects %s, naming the variable and the fix', (_name, env, message) => {
    expect(() => loadServiceConfig(env)).toThrow(message);
  });

  test('named statements are opt-in, for a direct connection', () => {
    expect(loadServiceConfig({ ...valid, DB_NAMED_STATEMENTS: 'true' }).DB_NAMED_STATEMENTS).toBe(true);
    expect(() => loadServiceConfig({ ...valid, DB_NAMED_STATEMENTS: 'yes' })).toThrow(
      /DB_NAMED_STATEMENTS: must be true or false/,
    );
  });

  test('the migrate CLI needs only the database variables', () => {
    expect(loadDatabaseConfig({ DATABASE_URL: valid.DATABASE_URL }).database.mode).toBe('url');
    expect(() => loadDatabaseConfig({ DB_IAM_AUTH: 'true' })).toThrow(/DB_HOST: is required/);
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
