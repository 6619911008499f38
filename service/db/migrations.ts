import { DatabaseError, Pool, PoolClient } from 'pg';
import { MigrationParams, Umzug, UmzugStorage } from 'umzug';
import { withClient } from './pool';
import { SERVICE_DATABASE_USER } from './settings';
import { RECORD } from '../orders/outcome';
import { CLAIM } from '../orders/reservation';

type Migration = { name: string; up: (params: MigrationParams<PoolClient>) => Promise<void> };

/**
 * The schema, in order. Kept in code (not files) so the service bundles into one file.
 * Never edit a migration that has shipped: add a new one. The statements stored as
 * functions come last, one migration per version of each ({@link functionMigrations}).
 */
export const MIGRATIONS: Migration[] = [
  {
    name: '0001-initial-schema',
    up: async ({ context: db }) => {
      await db.query(`
        CREATE TABLE inventory (
          sku          text PRIMARY KEY,
          available    integer NOT NULL CHECK (available >= 0),
          price_cents  integer NOT NULL CHECK (price_cents >= 0),
          updated_at   timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE orders (
          id               uuid PRIMARY KEY,
          idempotency_key  text NOT NULL UNIQUE,
          customer_id      text NOT NULL,
          status           text NOT NULL CHECK (status IN
                             ('PAYMENT_IN_PROGRESS', 'CONFIRMED', 'PENDING_PAYMENT', 'PAYMENT_DECLINED')),
          amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
          currency         text NOT NULL,
          payment_token    text NOT NULL,
          charge_id        text,
          created_at       timestamptz NOT NULL DEFAULT now(),
          updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX orders_in_progress ON orders (updated_at) WHERE status = 'PAYMENT_IN_PROGRESS';
        CREATE TABLE order_items (
          order_id          uuid NOT NULL REFERENCES orders (id),
          sku               text NOT NULL REFERENCES inventory (sku),
          quantity          integer NOT NULL CHECK (quantity > 0),
          unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0),
          PRIMARY KEY (order_id, sku)
        );
        CREATE TABLE idempotency_keys (
          key           text PRIMARY KEY,
          request_hash  text NOT NULL,
          order_id      uuid,
          status_code   integer,
          response      jsonb,
          locked_until  timestamptz,
          created_at    timestamptz NOT NULL DEFAULT now(),
          completed_at  timestamptz
        );
        CREATE TABLE outbox (
          id            bigserial PRIMARY KEY,
          destination   text NOT NULL CHECK (destination IN ('order-events', 'payment-retry')),
          payload       jsonb NOT NULL,
          created_at    timestamptz NOT NULL DEFAULT now(),
          published_at  timestamptz
        );
        CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
      `);
    },
  },
  {
    // The role the service logs in as through RDS Proxy (IAM auth, no password): DML on
    // the schema, nothing else. Roles are cluster-wide, so the role may already exist
    // (created for another database, or by a concurrent run elsewhere); the grants are
    // per database and idempotent. Default privileges cover the tables and sequences
    // that later migrations create, as long as the same owner runs them.
    name: '0002-checkout-role',
    up: async ({ context: db }) => {
      const role = SERVICE_DATABASE_USER;
      await db.query(`
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN
            CREATE ROLE ${role} LOGIN;
          END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
          NULL; -- created concurrently by a migration of another database
        END $$;
        -- rds_iam exists only on RDS/Aurora: membership makes the role log in with IAM tokens.
        DO $$
        BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN
            GRANT rds_iam TO ${role};
          END IF;
        END $$;
        GRANT USAGE ON SCHEMA public TO ${role};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${role};
        -- The service reads which migrations ran; only the owner records them.
        REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ${role};
      `);
    },
  },
  {
    // Exactly one recorded outcome per order. lease_token names the request that holds
    // an idempotency key (a new one on every claim or takeover): the statement that
    // records an outcome changes nothing unless its token still holds the key and the
    // order is still PAYMENT_IN_PROGRESS. released_at makes compensation idempotent: a
    // reservation goes back to stock in the statement that sets it, and only if unset.
    name: '0003-fenced-outcomes',
    up: async ({ context: db }) => {
      await db.query(`
        ALTER TABLE idempotency_keys ADD COLUMN lease_token uuid;
        ALTER TABLE orders ADD COLUMN released_at timestamptz;
      `);
    },
  },
  {
    // The outbox relay parks a message SQS refuses for good (parked_at, park_reason)
    // instead of retrying it forever, and relays each destination on its own: the index
    // serves "the oldest pending rows of this destination", so a destination with a
    // backlog does not make the other's query scan past it.
    name: '0004-outbox-parking',
    up: async ({ context: db }) => {
      await db.query(`
        ALTER TABLE outbox
          ADD COLUMN parked_at timestamptz,
          ADD COLUMN park_reason text,
          ADD CONSTRAINT outbox_parked_or_published CHECK (parked_at IS NULL OR published_at IS NULL);
        CREATE INDEX outbox_pending ON outbox (destination, id) WHERE published_at IS NULL AND parked_at IS NULL;
        DROP INDEX outbox_unpublished;
      `);
    },
  },
  {
    // The inventory reconciler (lambda/inventory-reconciler):
    // - CANCELLED: a PENDING_PAYMENT order that never completed within the hold time, its
    //   reservation released. The widened CHECK is added NOT VALID: every existing row
    //   satisfies the narrower one it replaces, so scanning the table under the ACCESS
    //   EXCLUSIVE lock this transaction holds would prove nothing; new rows are checked.
    // - orders_pending_payment serves the reconciler's "oldest PENDING_PAYMENT orders".
    // - inventory.counted_units: the SKU's units as of its last count (PUT
    //   /admin/inventory, service/orders/stock.ts): available + units held by unfinished
    //   orders + units sold, which every statement that moves stock keeps constant; the
    //   reconciler reports any difference as drift. Existing rows are counted here, with
    //   their inventory rows locked first (in SKU order, as every checkout locks them), so
    //   the count reads a state no checkout is changing; NULL (a row inserted without the
    //   admin route) is reported as uncounted.
    name: '0005-order-cancellation-and-stock-counts',
    up: async ({ context: db }) => {
      await db.query(`
        ALTER TABLE orders DROP CONSTRAINT orders_status_check;
        ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
          ('PAYMENT_IN_PROGRESS', 'CONFIRMED', 'PENDING_PAYMENT', 'PAYMENT_DECLINED', 'CANCELLED')) NOT VALID;
        CREATE INDEX orders_pending_payment ON orders (updated_at) WHERE status = 'PENDING_PAYMENT';
        ALTER TABLE inventory ADD COLUMN counted_units bigint;
      `);
      await db.query('SELECT sku FROM inventory ORDER BY sku FOR UPDATE');
      await db.query(`
        WITH units AS (
          SELECT oi.sku, sum(oi.quantity) AS units
            FROM order_items oi JOIN orders o ON o.id = oi.order_id
           WHERE o.status IN ('PAYMENT_IN_PROGRESS', 'PENDING_PAYMENT', 'CONFIRMED')
           GROUP BY oi.sku
        )
        UPDATE inventory i SET counted_units = i.available + coalesce(u.units, 0)
          FROM inventory j LEFT JOIN units u ON u.sku = j.sku
         WHERE j.sku = i.sku
      `);
    },
  },
  ...functionMigrations(),
];

/**
 * One migration per statement stored as a function (service/db/sql-function.ts), named
 * after the function and listed after the numbered migrations in {@link MIGRATIONS}. A
 * function's name carries a hash of its SQL, so a change to that SQL is a new function
 * and a new migration, which `npm run db:migrate` applies like any other.
 */
function functionMigrations(): Migration[] {
  return [CLAIM, RECORD].map((fn) => ({
    name: `function-${fn.name}`,
    up: async ({ context: db }) => {
      await db.query(fn.ddl);
    },
  }));
}

/** Why the service refuses to start: migrations are pending and its user may not apply them. */
export class MigrationsNotAppliedError extends Error {
  constructor(
    /** The database user that tried. */
    readonly user: string,
    /** The pending migrations, or undefined when even reading them was denied. */
    readonly pending: readonly string[] | undefined,
    cause: DatabaseError,
  ) {
    const what = pending ? `the pending migrations (${pending.join(', ')})` : 'the migrations';
    super(
      `database user "${user}" cannot apply ${what}: ${cause.message}. ` +
        'Run migrations as the schema owner first (`npm run db:migrate` with DB_USER=shop_admin, ' +
        'or DATABASE_URL of the owner), then start the service again.',
      { cause },
    );
    this.name = 'MigrationsNotAppliedError';
  }
}

/** PostgreSQL's insufficient_privilege, also when umzug wraps it in its MigrationError. */
function permissionDenied(err: unknown): DatabaseError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseError && e.code === '42501') return e;
  }
  return undefined;
}

/** Umzug storage in a table of applied migration names. */
class PgStorage implements UmzugStorage<PoolClient> {
  constructor(private readonly db: PoolClient) {}
  async logMigration({ name }: { name: string }): Promise<void> {
    await this.db.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
  }
  async unlogMigration({ name }: { name: string }): Promise<void> {
    await this.db.query('DELETE FROM schema_migrations WHERE name = $1', [name]);
  }
  async executed(): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      'SELECT name FROM schema_migrations ORDER BY name',
    );
    return rows.map((r) => r.name);
  }
}

/** Arbitrary constant: the advisory lock every instance takes to migrate one at a time. */
const MIGRATION_LOCK_ID = 0x5e0c_4e11;

/**
 * Applies pending migrations under a session advisory lock, so that a fleet starting at
 * once migrates exactly once; each migration runs in its own transaction.
 *
 * The advisory lock pins the session through RDS Proxy (`pg_advisory_lock` is session
 * state the proxy cannot move to another database connection). That happens once per
 * process, at start, and the connection is closed afterwards rather than returned to the
 * pool, which ends the pinned session: the connections that serve checkouts are never
 * pinned.
 *
 * A user that may not run DDL (the service's `checkout`) passes when nothing is pending:
 * it only reads `schema_migrations` and takes the lock.
 *
 * @returns the names of the migrations applied by this call
 * @throws MigrationsNotAppliedError when migrations are pending and the user lacks the
 * privileges to apply them
 */
export async function migrate(pool: Pool): Promise<string[]> {
  return withClient(
    pool,
    async (db) => {
      await db.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      let pending: string[] | undefined;
      try {
        const { rows } = await db.query<{ user: string; tracked: boolean }>(
          "SELECT current_user AS user, to_regclass('schema_migrations') IS NOT NULL AS tracked",
        );
        const { user, tracked } = rows[0];
        try {
          // Not CREATE TABLE IF NOT EXISTS: PostgreSQL checks CREATE on the schema first.
          if (!tracked) {
            pending = MIGRATIONS.map((m) => m.name);
            await db.query(
              'CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
            );
          }
          const umzug = new Umzug<PoolClient>({
            migrations: MIGRATIONS.map((m) => ({
              name: m.name,
              up: async (params) => {
                await db.query('BEGIN');
                try {
                  await m.up(params);
                  await db.query('COMMIT');
                } catch (err) {
                  await db.query('ROLLBACK');
                  throw err;
                }
              },
            })),
            context: db,
            storage: new PgStorage(db),
            logger: undefined,
          });
          pending = (await umzug.pending()).map((m) => m.name);
          if (pending.length === 0) return [];
          const applied = await umzug.up();
          return applied.map((m) => m.name);
        } catch (err) {
          const denied = permissionDenied(err);
          throw denied ? new MigrationsNotAppliedError(user, pending, denied) : err;
        }
      } finally {
        await db.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
      }
    },
    { discard: true },
  );
}
