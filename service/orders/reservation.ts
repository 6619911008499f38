import { Pool } from 'pg';
import { execute } from '../db/statement';
import { sqlFunction } from '../db/sql-function';
import { STORED_KEY_COLUMNS, StoredKey, StoredKeyRow, toStoredKey } from '../idempotency/store';
import { Cart, Order } from './order';

/** An order before its claim: everything but the amount, which the reservation prices. */
export type DraftOrder = Omit<Order, 'amountCents'>;

/** What claiming a key for a new order came to. */
export type Claim =
  /** Key claimed, every line reserved, order inserted as PAYMENT_IN_PROGRESS. */
  | { readonly kind: 'created'; readonly order: Order }
  /** Nothing reserved; the 409 is stored under the key (a retry gets the same answer). */
  | {
      readonly kind: 'out-of-stock';
      readonly sku: string;
      readonly reason: 'unknown-sku' | 'insufficient-stock';
    }
  /**
   * The key exists; nothing was written. `stored` is the key as this statement saw it,
   * or undefined when it was claimed by a statement that committed while this one ran.
   */
  | { readonly kind: 'existing'; readonly stored: StoredKey | undefined };

/**
 * Claim, reservation and order in one statement (one round trip, atomic without
 * BEGIN/COMMIT):
 *
 * - `seen`: the key as this statement's snapshot sees it; when it exists nothing else
 *   happens (no inventory lock for a replay);
 * - `locked`: the cart's inventory rows, locked in SKU order (ORDER BY is applied below
 *   the row locks, so they are taken in that order): every statement that locks
 *   inventory takes the rows in SKU order first, then the key, then the order, so no two
 *   of them can wait on each other in a cycle. Under READ COMMITTED a row that another
 *   checkout changed is locked and returned as last committed;
 * - `shortfall`: the first line (in SKU order) that is unknown or short;
 * - `claimed`: the key, holding the lease (token and expiry) and the order id when every
 *   line is available, or the stored 409 when one is not. ON CONFLICT DO NOTHING: a
 *   concurrent claim of the same key wins and this one writes nothing at all;
 * - `reserved`, `placed`, `items`: only when the key was claimed for an order. The
 *   CHECK (available >= 0) would abort the whole statement were a line short after all.
 *
 * Stored as a function (service/db/sql-function.ts), planned once per database session:
 * the service sends `SELECT * FROM checkout_claim_<hash>($1, ...)`, unnamed.
 */
export const CLAIM = sqlFunction(
  'checkout-claim',
  ['text', 'text', 'uuid', 'uuid', 'float8', 'text[]', 'int[]', 'text', 'text', 'text'],
  'amount_cents bigint, claimed boolean, short_sku text, short_reason text, seen jsonb',
  `
    WITH lines AS (
      SELECT l.sku, l.quantity FROM unnest($6::text[], $7::int[]) AS l (sku, quantity)
    ),
    seen AS (
      SELECT ${STORED_KEY_COLUMNS} FROM idempotency_keys k WHERE k.key = $1
    ),
    locked AS MATERIALIZED (
      SELECT i.sku, i.available FROM inventory i
       WHERE i.sku = ANY ($6::text[]) AND NOT EXISTS (SELECT FROM seen)
       ORDER BY i.sku
         FOR UPDATE
    ),
    shortfall AS (
      SELECT l.sku, CASE WHEN k.sku IS NULL THEN 'unknown-sku' ELSE 'insufficient-stock' END AS reason
        FROM lines l LEFT JOIN locked k ON k.sku = l.sku
       WHERE k.sku IS NULL OR k.available < l.quantity
       ORDER BY l.sku
       LIMIT 1
    ),
    claimed AS (
      INSERT INTO idempotency_keys
             (key, request_hash, order_id, lease_token, locked_until, status_code, response, completed_at)
      SELECT $1, $2,
             CASE WHEN s.sku IS NULL THEN $3::uuid END,
             CASE WHEN s.sku IS NULL THEN $4::uuid END,
             CASE WHEN s.sku IS NULL THEN now() + $5::float8 * interval '1 millisecond' END,
             CASE WHEN s.sku IS NOT NULL THEN 409 END,
             CASE WHEN s.sku IS NOT NULL
                  THEN jsonb_build_object('error', 'OUT_OF_STOCK', 'sku', s.sku, 'reason', s.reason) END,
             CASE WHEN s.sku IS NOT NULL THEN now() END
        FROM (VALUES (1)) AS one (x) LEFT JOIN shortfall s ON true
       WHERE NOT EXISTS (SELECT FROM seen)
      ON CONFLICT (key) DO NOTHING
      RETURNING order_id
    ),
    reserved AS (
      UPDATE inventory i SET available = i.available - l.quantity, updated_at = now()
        FROM lines l
       WHERE i.sku = l.sku AND EXISTS (SELECT FROM claimed c WHERE c.order_id IS NOT NULL)
      RETURNING i.sku, l.quantity, i.price_cents
    ),
    placed AS (
      INSERT INTO orders (id, idempotency_key, customer_id, status, amount_cents, currency, payment_token)
      SELECT $3, $1, $8, 'PAYMENT_IN_PROGRESS', sum(r.quantity * r.price_cents::bigint), $9, $10
        FROM reserved r
      HAVING count(*) > 0
      RETURNING amount_cents
    ),
    items AS (
      INSERT INTO order_items (order_id, sku, quantity, unit_price_cents)
      SELECT $3, r.sku, r.quantity, r.price_cents FROM reserved r
    )
    SELECT (SELECT amount_cents FROM placed) AS amount_cents,
           EXISTS (SELECT FROM claimed) AS claimed,
           s.sku AS short_sku, s.reason AS short_reason,
           (SELECT to_jsonb(e) FROM seen e) AS seen
      FROM (VALUES (1)) AS one (x)
      LEFT JOIN shortfall s ON true`,
);

interface ClaimRow {
  amount_cents: string | null;
  claimed: boolean;
  short_sku: string | null;
  short_reason: 'unknown-sku' | 'insufficient-stock' | null;
  /**
   * The key as the statement saw it, null when it did not exist: one column rather than
   * five, since pg sets up a parser per column of every result, and this one is only
   * read by a duplicate.
   */
  seen: StoredKeyRow | null;
}

/**
 * Claims `draft.key` for a new order and reserves `cart`, or stores the 409, or finds
 * the key taken: one statement (see {@link CLAIM}).
 *
 * @param cart - the draft's lines merged per SKU, in SKU order
 * @param leaseMs - how long the claim holds the key
 */
export async function claimOrder(pool: Pool, draft: DraftOrder, cart: Cart, leaseMs: number): Promise<Claim> {
  const { rows } = await execute<ClaimRow>(
    pool,
    CLAIM.call,
    [
      draft.key,
      draft.requestHash,
      draft.id,
      draft.leaseToken,
      leaseMs,
      cart.skus,
      cart.quantities,
      draft.customerId,
      draft.currency,
      draft.paymentToken,
    ],
    // A new checkout: shed (503, nothing written) rather than queue long for the database.
    'new',
  );
  const row = rows[0];
  if (row.amount_cents !== null) {
    return { kind: 'created', order: { ...draft, amountCents: Number(row.amount_cents) } };
  }
  if (row.claimed && row.short_sku !== null && row.short_reason !== null) {
    return { kind: 'out-of-stock', sku: row.short_sku, reason: row.short_reason };
  }
  return { kind: 'existing', stored: row.seen === null ? undefined : toStoredKey(row.seen) };
}
