import { AddressInfo, Socket, connect, createServer } from 'node:net';
import { DatabaseError } from 'pg';
import { parse } from 'pg-connection-string';
import { MIGRATIONS } from '../../../service/db/migrations';
import {
  MasterSecretError,
  MigrationFailedError,
  MigrationJobDeps,
  MigrationJobEnv,
  createMigrationJobHandler,
  isRetryableMigrationFailure,
  migrationDatabaseUrl,
  readMigrationJobEnv,
} from '../../../lambda/migrate/job';
import { WorkerConfigError } from '../../../lambda/shared/env';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';

/** A logger that keeps what the job logs. */
function recordingLogger() {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: unknown, ...extra: unknown[]): void =>
      void lines.push({ level, message: String(message), fields: extra[0] as Record<string, unknown> });
  return {
    lines,
    logger: { info: at('info'), warn: at('warn'), error: at('error'), addContext: () => undefined },
  };
}

/** The master secret as RDS writes it (extra keys included). */
const secretFor = (username: string, password = 'local-trust-auth-ignores-it') =>
  JSON.stringify({ engine: 'postgres', host: 'ignored', port: 5433, username, password });

describe('the migration job environment', () => {
  const env = {
    DB_HOST: 'shop-aurora.cluster-abc.us-east-1.rds.amazonaws.com',
    DB_PORT: '5433',
    DB_USER: 'shop_admin',
    DB_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:db-master-AbCdEf',
    DB_STATEMENT_TIMEOUT_MS: '240000',
    DB_LOCK_TIMEOUT_MS: '10000',
  };

  test('always verifies the server certificate: no variable turns TLS off', () => {
    // GIVEN the variables the construct sets, and one trying to downgrade TLS
    const read = readMigrationJobEnv({ ...env, DB_SSLMODE: 'disable', PGSSLMODE: 'disable' });
    // THEN the target requires verify-full, on the database postgres
    expect(read.target).toEqual({
      host: env.DB_HOST,
      port: 5433,
      database: 'postgres',
      tls: 'verify-full',
    });
    expect(read).toMatchObject({
      secretId: env.DB_SECRET_ID,
      expectedUser: 'shop_admin',
      lockTimeoutMs: 10_000,
    });
  });

  test.each(['DB_HOST', 'DB_SECRET_ID', 'DB_USER', 'DB_PORT'])('refuses to start without %s', (name) => {
    const broken: Record<string, string | undefined> = { ...env, [name]: undefined };
    expect(() => readMigrationJobEnv(broken)).toThrow(WorkerConfigError);
    expect(() => readMigrationJobEnv(broken)).toThrow(new RegExp(`^${name} is required`));
  });

  test('the connection string keeps any password intact and requires a verified TLS connection', () => {
    // GIVEN a password with every character a URL treats specially
    const password = 'p@ss:w/rd?#%&=+ é';
    const url = migrationDatabaseUrl(
      { host: env.DB_HOST, port: 5433, database: 'postgres', tls: 'verify-full' },
      { username: 'shop_admin', password },
      10_000,
    );
    // WHEN pg reads it
    const parsed = parse(url);
    // THEN it gets the password back, TLS on with verification (never rejectUnauthorized=false), and the lock timeout
    expect(parsed).toMatchObject({
      host: env.DB_HOST,
      port: '5433',
      database: 'postgres',
      user: 'shop_admin',
      password,
      lock_timeout: '10000',
    });
    expect(parsed.ssl).toEqual({});
  });

  test('tries again on a rotated password, a starting instance, a lock timeout or no answer; not on a SQL error', () => {
    const pgError = (code: string) => Object.assign(new DatabaseError('x', 1, 'error'), { code });
    expect(['28P01', '28000', '57P03', '55P03'].map((c) => isRetryableMigrationFailure(pgError(c)))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(isRetryableMigrationFailure(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(
      true,
    );
    expect(isRetryableMigrationFailure(pgError('42P01'))).toBe(false);
    expect(isRetryableMigrationFailure(pgError('42501'))).toBe(false);
  });
});

describeWithPostgres('the migration job against PostgreSQL', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db?.drop();
  });

  /** The job's dependencies for the test database: the secret comes from `secrets`, one per read. */
  function jobFor(secrets: string[], overrides: Partial<MigrationJobDeps> = {}) {
    const url = new URL(db.url);
    const env: MigrationJobEnv = {
      target: { host: url.hostname, port: Number(url.port), database: db.name, tls: 'disable' },
      secretId: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:db-master',
      expectedUser: expectedUserOf(db),
      statementTimeoutMs: 30_000,
      lockTimeoutMs: 5_000,
    };
    const reads: string[] = [];
    const waits: number[] = [];
    const { logger, lines } = recordingLogger();
    const deps: MigrationJobDeps = {
      env,
      logger,
      fetchSecret: async (secretId) => {
        reads.push(secretId);
        return secrets[Math.min(reads.length, secrets.length) - 1];
      },
      sleep: async (ms) => void waits.push(ms),
      ...overrides,
    };
    return { handler: createMigrationJobHandler(deps), deps, env, reads, waits, lines };
  }

  const tables = async () =>
    (
      await db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      )
    ).map((r) => r.table_name);
  const recorded = async () =>
    (await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((r) => r.name);

  test('applies every migration of the service as the secret user, with the secret read from the fetcher', async () => {
    // GIVEN an empty database and the master secret
    const { handler, env, reads } = jobFor([secretFor('postgres')]);
    // WHEN the job runs
    const result = await handler();
    // THEN every migration the service knows is applied and recorded, as that user
    const names = MIGRATIONS.map((m) => m.name);
    expect(result).toMatchObject({ applied: names, known: names, database: db.name, attempts: 1 });
    expect(result.user).toBe(env.expectedUser);
    expect(await recorded()).toEqual(names);
    expect(await tables()).toEqual(
      expect.arrayContaining([
        'idempotency_keys',
        'inventory',
        'order_items',
        'orders',
        'outbox',
        'schema_migrations',
      ]),
    );
    expect(reads).toEqual([env.secretId]);
  });

  test('a second run is a no-op: nothing applied, nothing recorded again', async () => {
    const { handler } = jobFor([secretFor('postgres')]);
    await handler();
    const before = await db.query('SELECT name, applied_at FROM schema_migrations ORDER BY name');
    // WHEN it runs again (a deploy whose bundle changed without a new migration)
    const again = await handler();
    // THEN it applies nothing and leaves the record as it was
    expect(again.applied).toEqual([]);
    expect(await db.query('SELECT name, applied_at FROM schema_migrations ORDER BY name')).toEqual(before);
  });

  test('a broken migration fails the run with its error, and nothing of it is kept', async () => {
    // GIVEN the schema as it is, then a release whose new migration creates a table and
    // then fails (the service's MIGRATIONS list, extended for this test only)
    const { handler } = jobFor([secretFor('postgres')]);
    await handler();
    const broken = {
      name: '9999-broken',
      up: async ({ context }: { context: { query(sql: string): Promise<unknown> } }) => {
        await context.query('CREATE TABLE half_done (id integer)');
        await context.query('SELECT * FROM no_such_table');
      },
    };
    MIGRATIONS.push(broken as (typeof MIGRATIONS)[number]);
    let thrown: unknown;
    try {
      // WHEN the job runs
      await handler().catch((err: unknown) => {
        thrown = err;
      });
    } finally {
      MIGRATIONS.splice(MIGRATIONS.indexOf(broken as (typeof MIGRATIONS)[number]), 1);
    }
    // THEN it throws the migration's name and PostgreSQL's message (what CloudFormation shows)
    expect(thrown).toBeInstanceOf(MigrationFailedError);
    expect((thrown as Error).message).toMatch(
      /^migration 9999-broken failed, rolled back \(nothing of it was kept\): relation "no_such_table" does not exist \(SQLSTATE 42P01\)$/,
    );
    expect(thrown).toMatchObject({ migration: '9999-broken', code: '42P01' });
    // AND the failed migration left nothing: no table, no record; the earlier ones stand
    expect(await tables()).not.toContain('half_done');
    expect(await recorded()).toEqual(MIGRATIONS.map((m) => m.name));
  });

  test('a password that stops working mid-rotation is read again, and the next try succeeds', async () => {
    // GIVEN a database that refuses the first login as PostgreSQL refuses a wrong password
    // (28P01), as it does between a single-user rotation's new password and Secrets
    // Manager making it current, and lets the next one through
    const gate = await refuseFirstLogin(new URL(db.url));
    try {
      const job = jobFor([
        secretFor(expectedUserOf(db), 'before-rotation'),
        secretFor(expectedUserOf(db), 'after'),
      ]);
      const handler = createMigrationJobHandler({
        ...job.deps,
        env: { ...job.env, target: { ...job.env.target, host: '127.0.0.1', port: gate.port } },
      });
      // WHEN the job runs
      const result = await handler();
      // THEN the second try, with the secret read again, applied everything
      expect(result.attempts).toBe(2);
      expect(result.applied).toEqual(MIGRATIONS.map((m) => m.name));
      expect(job.reads).toHaveLength(2);
      expect(job.waits).toEqual([2_000]);
      expect(job.lines.filter((l) => l.level === 'warn').map((l) => l.fields?.code)).toEqual(['28P01']);
      expect(gate.refused()).toBe(1);
    } finally {
      await gate.close();
    }
  });

  test('a refusal that lasts fails the run after its tries, with the database message', async () => {
    const gate = await refuseFirstLogin(new URL(db.url), Infinity);
    try {
      const job = jobFor([secretFor(expectedUserOf(db))]);
      const handler = createMigrationJobHandler({
        ...job.deps,
        attempts: 3,
        env: { ...job.env, target: { ...job.env.target, host: '127.0.0.1', port: gate.port } },
      });
      await expect(handler()).rejects.toThrow(
        /^could not migrate \S+ at 127\.0\.0\.1:\d+ \(3 tries\): password authentication failed for user "\S+" \(SQLSTATE 28P01\)$/,
      );
      expect(job.reads).toHaveLength(3);
      expect(await db.query("SELECT to_regclass('schema_migrations') AS t")).toEqual([{ t: null }]);
    } finally {
      await gate.close();
    }
  });

  test('a secret for another user is refused before connecting, and not tried again', async () => {
    const job = jobFor([secretFor('checkout')]);
    await expect(job.handler()).rejects.toThrow(MasterSecretError);
    await expect(job.handler()).rejects.toThrow(
      /the master secret is for "checkout", but migrations run as the schema owner "\S+" \(DB_USER\)/,
    );
    expect(job.waits).toEqual([]);
  });

  test('TLS is required: a server without TLS is refused, never used in clear', async () => {
    // GIVEN the local PostgreSQL, which has no TLS, and the job's real mode (verify-full)
    const job = jobFor([secretFor(expectedUserOf(db))]);
    const handler = createMigrationJobHandler({
      ...job.deps,
      attempts: 1,
      env: { ...job.env, target: { ...job.env.target, tls: 'verify-full' } },
    });
    // WHEN it runs THEN it fails without applying anything
    await expect(handler()).rejects.toThrow(/The server does not support SSL connections/);
    expect(await db.query("SELECT to_regclass('schema_migrations') AS t")).toEqual([{ t: null }]);
  });
});

/** The user the test database's URL logs in as (trust auth: any password). */
function expectedUserOf(db: TestDatabase): string {
  return decodeURIComponent(new URL(db.url).username) || 'postgres';
}

/**
 * A TCP stand-in for the database: the first `refusals` logins get PostgreSQL's own
 * ErrorResponse for a wrong password (FATAL 28P01), every later connection is piped to
 * the real server.
 */
async function refuseFirstLogin(
  real: URL,
  refusals = 1,
): Promise<{ port: number; refused(): number; close(): Promise<void> }> {
  const field = (type: string, value: string) =>
    Buffer.concat([Buffer.from(type), Buffer.from(`${value}\0`)]);
  const error = (user: string) => {
    const body = Buffer.concat([
      field('S', 'FATAL'),
      field('V', 'FATAL'),
      field('C', '28P01'),
      field('M', `password authentication failed for user "${user}"`),
      Buffer.from([0]),
    ]);
    const header = Buffer.alloc(5);
    header.write('E', 0);
    header.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([header, body]);
  };
  let refused = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (refused < refusals) {
      refused++;
      client.once('data', (startup) => {
        // The startup packet: length, protocol, then key\0value\0 pairs (user first).
        const pairs = startup.subarray(8).toString().split('\0');
        client.end(error(pairs[pairs.indexOf('user') + 1] ?? 'unknown'));
      });
      return;
    }
    const upstream = connect(Number(real.port || 5432), real.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    refused: () => refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
