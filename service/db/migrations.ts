import { Pool, PoolClient } from 'pg';
import { MigrationParams, Umzug, UmzugStorage } from 'umzug';
import { withClient } from './pool';

type Migration = { name: string; up: (params: MigrationParams<PoolClient>) => Promise<void> };

/**
 * The schema, in order. Kept in code (not files) so the service bundles into one file.
 * Never edit a migration that has shipped: add a new one.
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
];

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
 * @returns the names of the migrations applied by this call
 */
export async function migrate(pool: Pool): Promise<string[]> {
  return withClient(pool, async (db) => {
    await db.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      await db.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
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
      const applied = await umzug.up();
      return applied.map((m) => m.name);
    } finally {
      await db.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    }
  });
}
