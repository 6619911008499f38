import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Pool } from 'pg';
import pino from 'pino';
import { loadServiceConfig } from '../../service/config';
import { AuthTokenSigner, connectionConfig, createAuthTokenSigner } from '../../service/db/connection';
import { MIGRATIONS, MigrationsNotAppliedError, migrate } from '../../service/db/migrations';
import { createPool } from '../../service/db/pool';
import { DatabaseSettings, IamDatabaseSettings } from '../../service/db/settings';
import { startService } from '../../service/server';
import {
  ADMIN_DATABASE_URL,
  TestDatabase,
  createTestDatabase,
  postgresUnavailableReason,
} from './helpers/database';
import { call, checkout, newKey, serviceEnv, setStock, startHarness } from './helpers/harness';
import { PasswordFront, passwordMatches } from './helpers/password-front';

const ROOT = join(__dirname, '..', '..');
const PROXY_HOST = 'shop.proxy-abc123def456.us-east-1.rds.amazonaws.com';
/** The fleet's environment: IAM mode, no DATABASE_URL (an empty variable counts as unset). */
const iamEnv = {
  ...serviceEnv({ url: '' } as TestDatabase, 'http://127.0.0.1:9', 'http://127.0.0.1:9'),
  DATABASE_URL: '',
  DB_IAM_AUTH: 'true',
  DB_HOST: PROXY_HOST,
  AWS_REGION: 'us-east-1',
};

/** A signer that counts its calls and returns a fixed token. */
function fakeSigner(token: string): AuthTokenSigner & { calls: number } {
  return {
    calls: 0,
    async getAuthToken() {
      this.calls++;
      return token;
    },
  };
}

/** The URL of a test database, as another user (trust auth on the local server). */
function urlAs(db: TestDatabase, user: string): string {
  const url = new URL(db.url);
  url.username = user;
  url.password = '';
  return url.toString();
}

/** Runs one statement as `checkout` on its own connection. */
async function asCheckout<T = Record<string, unknown>>(db: TestDatabase, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: urlAs(db, 'checkout') });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

async function migratedDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  const pool = new Pool({ connectionString: db.url, max: 2 });
  await migrate(pool).finally(() => pool.end());
  return db;
}

/** PostgreSQL, as the Jest global setup found it; without it the database suites are skipped. */
const ready = postgresUnavailableReason() === undefined;
const describeWithDb = ready ? describe : describe.skip;
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
});
const database = async (migrated = true) => {
  const db = migrated ? await migratedDatabase() : await createTestDatabase();
  databases.push(db);
  return db;
};

describe('IAM mode connection settings', () => {
  test('the pool verifies TLS against the proxy host name and takes its password from the signer', async () => {
    // GIVEN the fleet's environment
    const config = loadServiceConfig(iamEnv);
    expect(config.database).toEqual({
      mode: 'iam',
      host: PROXY_HOST,
      port: 5432,
      database: 'postgres',
      user: 'checkout',
      region: 'us-east-1',
    });
    // WHEN the pool is built
    const signer = fakeSigner('signed-token');
    const pool = createPool(config, { signer });
    try {
      // THEN TLS is verified, with SNI and host name check on the proxy endpoint
      expect(pool.options).toMatchObject({
        host: PROXY_HOST,
        port: 5432,
        database: 'postgres',
        user: 'checkout',
        ssl: { rejectUnauthorized: true, servername: PROXY_HOST },
      });
      expect(pool.options.connectionString).toBeUndefined();
      // AND the password is the signer's token, fetched when asked for
      expect(typeof pool.options.password).toBe('function');
      expect(signer.calls).toBe(0);
      await expect((pool.options.password as () => Promise<string>)()).resolves.toBe('signed-token');
      expect(signer.calls).toBe(1);
    } finally {
      await pool.end();
    }
  });

  test('a URL connection is used as given', () => {
    expect(connectionConfig({ mode: 'url', url: 'postgres://u@h:5432/d' })).toEqual({
      connectionString: 'postgres://u@h:5432/d',
    });
  });

  test('a real Signer signs a connect token for the proxy host, port and user, without the network', async () => {
    const settings = loadServiceConfig(iamEnv).database as IamDatabaseSettings;
    const connects = jest.spyOn(Socket.prototype, 'connect');
    try {
      const fromSigner = await createAuthTokenSigner(settings).getAuthToken();
      const fromPool = await (connectionConfig(settings).password as () => Promise<string>)();
      for (const token of [fromSigner, fromPool]) {
        expect(token.startsWith(`${PROXY_HOST}:5432/?`)).toBe(true);
        expect(token).toContain('Action=connect');
        expect(token).toContain('DBUser=checkout');
        expect(token).toContain('X-Amz-Expires=900');
        expect(token).toContain('%2Fus-east-1%2Frds-db%2Faws4_request');
      }
      expect(connects).not.toHaveBeenCalled();
    } finally {
      connects.mockRestore();
    }
  });
});

describeWithDb('the password function against a server that checks passwords', () => {
  let db: TestDatabase;
  let admin: Pool;
  let front: PasswordFront;
  const role = `iam_front_${randomBytes(4).toString('hex')}`;
  const token = `token-${randomBytes(16).toString('hex')}`;
  const settings = (): DatabaseSettings => ({
    mode: 'iam',
    host: '127.0.0.1',
    port: front.port,
    database: db.name,
    user: role,
    region: 'us-east-1',
  });
  // The front cannot present a certificate that chains to a public root, so this pool
  // speaks plain TCP to it; the TLS settings are asserted above.
  const poolThroughFront = (signer: AuthTokenSigner, max = 4) =>
    new Pool({ ...connectionConfig(settings(), { signer }), ssl: false, max });

  beforeAll(async () => {
    db = await database(false);
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${token}'`);
    admin = new Pool({ connectionString: db.url, max: 4 });
    const upstream = new URL(ADMIN_DATABASE_URL);
    front = new PasswordFront(
      { host: upstream.hostname, port: Number(upstream.port || 5432) },
      async (user, password) => {
        const { rows } = await admin.query<{ rolpassword: string | null }>(
          'SELECT rolpassword FROM pg_authid WHERE rolname = $1',
          [user],
        );
        return passwordMatches(rows[0]?.rolpassword ?? null, user, password);
      },
    );
    await front.start();
  });
  afterAll(async () => {
    await front?.stop();
    await admin?.end();
    await db?.query(`DROP ROLE IF EXISTS ${role}`);
  });

  test('is called once per new connection, not per query', async () => {
    const signer = fakeSigner(token);
    const pool = poolThroughFront(signer);
    try {
      // GIVEN four connections open at once, each used for several queries
      const clients = await Promise.all([1, 2, 3, 4].map(() => pool.connect()));
      for (const client of clients) {
        for (let i = 0; i < 3; i++) {
          expect((await client.query('SELECT current_user AS u')).rows[0].u).toBe(role);
        }
      }
      clients.forEach((c) => c.release());
      // WHEN twenty more queries reuse them
      await Promise.all(Array.from({ length: 20 }, () => pool.query('SELECT 1')));
      // THEN four tokens were signed, each accepted as a password by the server
      expect(signer.calls).toBe(4);
      expect(front.authenticated).toBe(4);

      // AND a connection that is closed is replaced by a new one that signs again
      const broken = await pool.connect();
      broken.release(true);
      const again = await Promise.all([1, 2, 3, 4].map(() => pool.connect()));
      again.forEach((c) => c.release());
      expect(signer.calls).toBe(5);
      expect(front.authenticated).toBe(5);
    } finally {
      await pool.end();
    }
  });

  test('a wrong token is refused by the server', async () => {
    const pool = poolThroughFront(fakeSigner('not-the-password'));
    try {
      await expect(pool.query('SELECT 1')).rejects.toThrow(/password authentication failed for user/);
    } finally {
      await pool.end();
    }
  });

  test('a signing failure names the user, endpoint and region', async () => {
    const pool = poolThroughFront({
      getAuthToken: () => Promise.reject(new Error('Could not load credentials from any providers')),
    });
    try {
      await expect(pool.query('SELECT 1')).rejects.toThrow(
        new RegExp(
          `could not sign an IAM auth token for ${role}@127.0.0.1:${front.port} in us-east-1: Could not load credentials`,
        ),
      );
    } finally {
      await pool.end();
    }
  });
});

describeWithDb('the checkout role migration', () => {
  test('creates a LOGIN role that can change data but not the schema', async () => {
    const db = await database();
    const [role] = await db.query(
      `SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NULL AS no_password
         FROM pg_authid WHERE rolname = 'checkout'`,
    );
    expect(role).toEqual({
      rolcanlogin: true,
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      no_password: true,
    });
    await asCheckout(db, `INSERT INTO inventory (sku, available, price_cents) VALUES ('MIG-1', 3, 100)`);
    await asCheckout(
      db,
      `INSERT INTO outbox (destination, payload) VALUES ('order-events', '{}'); DELETE FROM outbox`,
    );
    expect(await asCheckout(db, `SELECT available FROM inventory WHERE sku = 'MIG-1'`)).toEqual([
      { available: 3 },
    ]);
    expect(await asCheckout(db, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([
      { n: MIGRATIONS.length },
    ]);
    await expect(asCheckout(db, 'CREATE TABLE extra (id int)')).rejects.toThrow(
      /permission denied for schema public/,
    );
    await expect(asCheckout(db, 'DROP TABLE orders CASCADE')).rejects.toThrow(
      /must be owner of table orders/,
    );
    await expect(asCheckout(db, `INSERT INTO schema_migrations (name) VALUES ('9999-fake')`)).rejects.toThrow(
      /permission denied for table schema_migrations/,
    );
  });

  test('tables and sequences of a later migration are usable by checkout', async () => {
    const db = await database();
    const later = {
      name: '9999-test-later-table',
      up: async ({ context }: { context: { query: (sql: string) => Promise<unknown> } }) => {
        await context.query('CREATE TABLE later_table (id bigserial PRIMARY KEY, note text)');
      },
    };
    MIGRATIONS.push(later);
    try {
      const pool = new Pool({ connectionString: db.url, max: 2 });
      await expect(migrate(pool).finally(() => pool.end())).resolves.toEqual([later.name]);
    } finally {
      MIGRATIONS.splice(MIGRATIONS.indexOf(later), 1);
    }
    await asCheckout(db, `INSERT INTO later_table (note) VALUES ('from checkout')`);
    expect(await asCheckout(db, 'SELECT id::int, note FROM later_table')).toEqual([
      { id: 1, note: 'from checkout' },
    ]);
  });

  test('is re-runnable, and grants rds_iam where that role exists (RDS, Aurora)', async () => {
    const db = await database();
    // Running it again changes nothing and fails on nothing.
    await db.query(`DELETE FROM schema_migrations WHERE name = '0002-checkout-role'`);
    const pool = new Pool({ connectionString: db.url, max: 2 });
    await expect(migrate(pool).finally(() => pool.end())).resolves.toEqual(['0002-checkout-role']);
    await asCheckout(db, `INSERT INTO inventory (sku, available, price_cents) VALUES ('MIG-2', 1, 1)`);

    // rds_iam is cluster-wide: create it only inside a transaction that is rolled back.
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('CREATE ROLE rds_iam');
      const migration = MIGRATIONS.find((m) => m.name === '0002-checkout-role')!;
      await migration.up({ name: migration.name, context: client as never });
      const { rows } = await client.query(`SELECT pg_has_role('checkout', 'rds_iam', 'MEMBER') AS member`);
      expect(rows[0].member).toBe(true);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });
});

describeWithDb('the service connected as checkout', () => {
  test('starts and takes orders when no migration is pending', async () => {
    const db = await database();
    const h = await startHarness(db, { DATABASE_URL: urlAs(db, 'checkout') });
    try {
      const url = h.service.url;
      expect((await call(url, 'GET', '/health/startup')).status).toBe(200);
      expect((await call(url, 'GET', '/health/ready')).status).toBe(200);
      await setStock(url, 'AS-CHECKOUT', 5);
      const placed = await checkout(url, newKey(), {
        customerId: 'cust-1',
        items: [{ sku: 'AS-CHECKOUT', quantity: 1 }],
        paymentToken: 'tok_visa',
      });
      expect(placed.status).toBe(201);
      expect(placed.body.status).toBe('CONFIRMED');
    } finally {
      await h.stop();
    }
  });

  test('refuses to start when a migration is pending, telling the operator to run it as the owner', async () => {
    const db = await database();
    const pending = {
      name: '9999-test-pending',
      up: async ({ context }: { context: { query: (sql: string) => Promise<unknown> } }) => {
        await context.query('CREATE TABLE pending_table (id int)');
      },
    };
    MIGRATIONS.push(pending);
    try {
      const env = serviceEnv(db, 'http://127.0.0.1:9', 'http://127.0.0.1:9', {
        DATABASE_URL: urlAs(db, 'checkout'),
      });
      const started = startService(loadServiceConfig(env), pino({ level: 'silent' }));
      await expect(started).rejects.toThrow(MigrationsNotAppliedError);
      await expect(started).rejects.toThrow(
        /database user "checkout" cannot apply the pending migrations \(9999-test-pending\): permission denied for schema public\. Run migrations as the schema owner first \(`npm run db:migrate` with DB_USER=shop_admin/,
      );
    } finally {
      MIGRATIONS.splice(MIGRATIONS.indexOf(pending), 1);
    }
    expect(await db.query(`SELECT to_regclass('pending_table') AS t`)).toEqual([{ t: null }]);
  });
});

describeWithDb('npm run db:migrate', () => {
  const run = promisify(execFile);
  const migrateWith = (env: Record<string, string>) => {
    const base = { ...process.env };
    for (const name of ['DATABASE_URL', 'DB_IAM_AUTH', 'DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER']) {
      delete base[name];
    }
    return run('npm', ['run', '--silent', 'db:migrate'], { cwd: ROOT, env: { ...base, ...env } }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
  };

  test('applies pending migrations as the owner, printing each, and then has nothing to do', async () => {
    const db = await database(false);
    const asCheckoutFirst = await migrateWith({ DATABASE_URL: urlAs(db, 'checkout') });
    expect(asCheckoutFirst.code).toBe(1);
    const names = MIGRATIONS.map((m) => m.name);
    expect(asCheckoutFirst.stderr).toContain(
      `database user "checkout" cannot apply the pending migrations (${names.join(', ')})`,
    );

    const first = await migrateWith({ DATABASE_URL: db.url });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(
        `^${names.map((name) => `applied ${name}\n`).join('')}${names.length} migration\\(s\\) applied`,
      ),
    );
    const second = await migrateWith({ DATABASE_URL: db.url });
    expect(second.stdout).toMatch(/^no pending migrations \(database shop_test_\w+ as \w+\)/);
  });

  test('with no connection settings, exits 78 naming the variables', async () => {
    const result = await migrateWith({});
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/DATABASE_URL: is required .* DB_IAM_AUTH=true, DB_HOST and AWS_REGION/);
  });
});
