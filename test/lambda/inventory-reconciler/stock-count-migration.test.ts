import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { MIGRATIONS, migrate } from '../../../service/db/migrations';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';

const COUNTS = '0005-order-cancellation-and-stock-counts';

/**
 * Migration 0005 on a database that already has stock and orders (a deployed shop being
 * upgraded): what it records as each SKU's count must make the ledger add up, or the
 * reconciler's drift alarm would fire on the first run after the upgrade.
 */
describeWithPostgres(`migration ${COUNTS}`, () => {
  let db: TestDatabase;
  let pool: Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new Pool({ connectionString: db.url, max: 2 });
    // GIVEN the schema as the previous release left it: every migration before 0005
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(
        'CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const before = MIGRATIONS.slice(
        0,
        MIGRATIONS.findIndex((m) => m.name === COUNTS),
      );
      for (const m of before) {
        await m.up({ context: client, name: m.name } as never);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [m.name]);
      }
    } finally {
      await client.end();
    }
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  test('counts existing stock as available + held + sold, so the ledger adds up at once', async () => {
    // AND stock with orders in every state: 3 in progress, 4 pending payment, 5 sold, 6 declined (returned)
    await db.query(
      "INSERT INTO inventory (sku, available, price_cents) VALUES ('OLD-1', 20, 100), ('OLD-2', 9, 100)",
    );
    const place = async (status: string, quantity: number, released = false) => {
      const id = randomUUID();
      await db.query(
        `INSERT INTO orders (id, idempotency_key, customer_id, status, amount_cents, currency, payment_token, released_at)
         VALUES ($1, $2, 'c', $3, 0, 'USD', 't', CASE WHEN $4::boolean THEN now() END)`,
        [id, `key-${id}`, status, released],
      );
      await db.query("INSERT INTO order_items VALUES ($1, 'OLD-1', $2, 100)", [id, quantity]);
    };
    await place('PAYMENT_IN_PROGRESS', 3);
    await place('PENDING_PAYMENT', 4);
    await place('CONFIRMED', 5);
    await place('PAYMENT_DECLINED', 6, true);

    // WHEN the migration runs
    // (the statements stored as functions come after the numbered migrations)
    expect(await migrate(pool)).toEqual([
      COUNTS,
      ...MIGRATIONS.filter((m) => m.name.startsWith('function-')).map((m) => m.name),
    ]);

    // THEN each SKU's count is its available units plus those held and sold
    expect(await db.query('SELECT sku, counted_units::int AS counted FROM inventory ORDER BY sku')).toEqual([
      { sku: 'OLD-1', counted: 20 + 3 + 4 + 5 },
      { sku: 'OLD-2', counted: 9 },
    ]);
    // AND an order may now be CANCELLED, while an unknown status is still refused
    await place('CANCELLED', 1, true);
    await expect(place('LOST', 1)).rejects.toThrow(/orders_status_check/);
  });
});
