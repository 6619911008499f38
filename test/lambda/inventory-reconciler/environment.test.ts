import { readDatabaseSettings } from '../../../lambda/inventory-reconciler/database';
import { readReconcilerEnv } from '../../../lambda/inventory-reconciler/reconciler';

/** The environment the construct sets (lib/constructs/inventory-reconciler.ts), as the handler reads it at init. */
describe('inventory reconciler environment', () => {
  const iam = {
    DB_IAM_AUTH: 'true',
    DB_HOST: 'shop-proxy.proxy-abc.us-east-1.rds.amazonaws.com',
    DB_PORT: '5432',
    DB_USER: 'checkout',
    AWS_REGION: 'us-east-1',
  };

  test('IAM auth through the proxy: host, port, user and region, database postgres', () => {
    expect(readDatabaseSettings(iam)).toEqual({
      mode: 'iam',
      host: 'shop-proxy.proxy-abc.us-east-1.rds.amazonaws.com',
      port: 5432,
      database: 'postgres',
      user: 'checkout',
      region: 'us-east-1',
    });
  });

  test('a connection string for a local database', () => {
    expect(readDatabaseSettings({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/shop' })).toEqual({
      mode: 'url',
      url: 'postgres://postgres@127.0.0.1:5432/shop',
    });
  });

  test.each([
    [{}, /DB_IAM_AUTH=true \(with DB_HOST\) is required, or DATABASE_URL/],
    [{ ...iam, DATABASE_URL: 'postgres://x/y' }, /two connection modes: set one/],
    [{ DATABASE_URL: 'mysql://x/y' }, /DATABASE_URL must be a postgres:\/\/ connection string/],
    [
      { ...iam, DB_HOST: 'https://proxy' },
      /DB_HOST must be a host name, without scheme or port, got "https:\/\/proxy"/,
    ],
    [{ ...iam, DB_USER: '' }, /DB_USER is required but not set/],
    [{ ...iam, DB_PORT: 'x' }, /DB_PORT must be a whole number of at least 1, got "x"/],
  ])('refuses %j', (env, message) => {
    expect(() => readDatabaseSettings(env)).toThrow(message);
  });

  test('the hold time is required, in whole milliseconds', () => {
    expect(readReconcilerEnv({ HOLD_MS: '1900800000' })).toEqual({ holdMs: 1_900_800_000 });
    expect(() => readReconcilerEnv({})).toThrow(/HOLD_MS is required but not set/);
    expect(() => readReconcilerEnv({ HOLD_MS: '1.5' })).toThrow(/HOLD_MS must be a whole number/);
  });
});
