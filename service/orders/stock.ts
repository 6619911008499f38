import { Pool } from 'pg';
import { execute, statement } from '../db/statement';
import { inTransaction } from '../db/transaction';

/**
 * The stock ledger. `inventory.available` counts a SKU's units free to sell; the units an
 * order took are, by the order's status:
 *
 * - **held** while it is unfinished: PAYMENT_IN_PROGRESS, PENDING_PAYMENT;
 * - **sold** once CONFIRMED;
 * - **back in `available`** once PAYMENT_DECLINED or CANCELLED (the statement that sets the
 *   status puts them back and sets `released_at`, so they go back once).
 *
 * Every statement that moves stock keeps `available + held + sold` constant: a claim
 * moves units from available to held in one statement (service/orders/reservation.ts), an
 * outcome from held to sold or back to available (service/orders/outcome.ts, the
 * payment-retry worker), a cancellation from held back to available (the inventory
 * reconciler). Only setting the stock ({@link setStock}) changes it, and records the new
 * value as `inventory.counted_units`. The inventory reconciler recomputes the sum and
 * reports any difference from `counted_units` as drift: units that appeared or vanished
 * without an order to explain them (a double release, a lost one, a hand edit).
 */
export const HELD_STATUSES = ['PAYMENT_IN_PROGRESS', 'PENDING_PAYMENT'] as const;

/** Statuses whose units are sold (see {@link HELD_STATUSES}). */
export const SOLD_STATUSES = ['CONFIRMED'] as const;

const sqlList = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');

/** SQL: the order `o` holds its units (they are out of `available`, not sold). */
export const ORDER_HOLDS_UNITS = `o.status IN (${sqlList(HELD_STATUSES)})`;

/** SQL: the order `o` sold its units. */
export const ORDER_SOLD_UNITS = `o.status IN (${sqlList(SOLD_STATUSES)})`;

/**
 * Sets a SKU's stock and price; a new SKU is created. Locks the row (the upsert), so no
 * checkout or release of this SKU runs until the transaction ends.
 */
const UPSERT_STOCK = statement(
  'inventory-set-stock',
  `
    INSERT INTO inventory (sku, available, price_cents, counted_units) VALUES ($1, $2::int, $3, $2::int)
    ON CONFLICT (sku) DO UPDATE SET available = $2, price_cents = $3, updated_at = now()`,
);

/**
 * Records the count: available + units held + units sold. A statement of its own, after
 * the upsert locked the row: under READ COMMITTED it reads a snapshot taken after the
 * lock, which holds every claim and release of this SKU that committed before it (each
 * locks the inventory row first), and no later one can start until commit. In the
 * upsert's own statement, a checkout that committed while the upsert waited for the lock
 * would be missing from the sum, and the SKU would drift by its units for good.
 */
const RECORD_COUNT = statement(
  'inventory-record-count',
  `
    UPDATE inventory i
       SET counted_units = i.available + coalesce((
             SELECT sum(oi.quantity) FROM order_items oi JOIN orders o ON o.id = oi.order_id
              WHERE oi.sku = i.sku AND (${ORDER_HOLDS_UNITS} OR ${ORDER_SOLD_UNITS})), 0)
     WHERE i.sku = $1`,
);

/**
 * Sets the stock of `sku` (PUT /admin/inventory/:sku): `available` units free to sell, at
 * `priceCents` each. Setting the stock is a count: what the ledger holds for the SKU
 * from now on is `available` plus what unfinished orders hold and what was sold, and
 * drift the inventory reconciler reported for it is cleared (see {@link HELD_STATUSES}).
 */
export async function setStock(
  pool: Pool,
  sku: string,
  available: number,
  priceCents: number,
): Promise<void> {
  await inTransaction(pool, async (db) => {
    await execute(db, UPSERT_STOCK, [sku, available, priceCents]);
    await execute(db, RECORD_COUNT, [sku]);
  });
}
