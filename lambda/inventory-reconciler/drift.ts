import type { ClientBase } from 'pg';
import { statement } from '../../service/db/statement';
import { ORDER_HOLDS_UNITS, ORDER_SOLD_UNITS } from '../../service/orders/stock';

/** SKUs listed by name in a report (the largest drifts). */
export const WORST_SKUS_REPORTED = 20;

/**
 * The stock ledger recounted (service/orders/stock.ts): per SKU, `available` plus the units
 * unfinished orders hold plus the units sold, against `counted_units`, what its last count
 * recorded. One statement, so one snapshot: every statement that moves stock changes
 * `available` and the orders in one transaction, so a consistent database reads exactly
 * 0, never a passing difference. Read-only.
 *
 * It aggregates every order line once (a hash aggregate over `order_items` joined to
 * `orders`): its cost grows with the order history, bounded by the statement timeout.
 */
const DRIFT = statement(
  'inventory-reconciler-drift',
  `
    WITH units AS (
      SELECT oi.sku,
             sum(oi.quantity) FILTER (WHERE ${ORDER_HOLDS_UNITS}) AS held,
             sum(oi.quantity) FILTER (WHERE ${ORDER_SOLD_UNITS}) AS sold
        FROM order_items oi JOIN orders o ON o.id = oi.order_id
       GROUP BY oi.sku
    ),
    ledger AS MATERIALIZED (
      SELECT i.sku, i.available, i.counted_units,
             coalesce(u.held, 0) AS held, coalesce(u.sold, 0) AS sold,
             i.available + coalesce(u.held, 0) + coalesce(u.sold, 0) - i.counted_units AS drift
        FROM inventory i LEFT JOIN units u ON u.sku = i.sku
    )
    SELECT count(*) FILTER (WHERE counted_units IS NOT NULL)::int AS checked,
           count(*) FILTER (WHERE counted_units IS NULL)::int AS uncounted,
           count(*) FILTER (WHERE drift <> 0)::int AS drifted,
           coalesce(sum(abs(drift)), 0)::bigint AS drift_units,
           coalesce(sum(held), 0)::bigint AS held_units,
           (SELECT coalesce(jsonb_agg(w), '[]'::jsonb) FROM (
              SELECT l.sku, l.available, l.held, l.sold, l.counted_units AS "countedUnits", l.drift
                FROM ledger l WHERE l.drift <> 0
               ORDER BY abs(l.drift) DESC, l.sku
               LIMIT $1) w) AS worst
      FROM ledger`,
);

/** One SKU whose ledger does not add up. */
export interface SkuDrift {
  readonly sku: string;
  readonly available: number;
  readonly held: number;
  readonly sold: number;
  readonly countedUnits: number;
  /** available + held + sold - countedUnits: positive, units appeared; negative, units vanished. */
  readonly drift: number;
}

/** What recounting the ledger found. */
export interface DriftReport {
  /** SKUs with a count, checked. */
  readonly checkedSkus: number;
  /** SKUs without a count (`counted_units` NULL), not checked. */
  readonly uncountedSkus: number;
  /** SKUs whose drift is not 0. */
  readonly driftedSkus: number;
  /** Sum over SKUs of |drift|. */
  readonly driftUnits: number;
  /** Units held by unfinished orders. */
  readonly heldUnits: number;
  /** The largest drifts, at most {@link WORST_SKUS_REPORTED}. */
  readonly worst: SkuDrift[];
}

/** Recounts the stock ledger: see {@link DRIFT}. */
export async function measureDrift(db: ClientBase): Promise<DriftReport> {
  const { rows } = await db.query<{
    checked: number;
    uncounted: number;
    drifted: number;
    drift_units: string;
    held_units: string;
    worst: Record<keyof SkuDrift, string | number>[];
  }>(DRIFT.text, [WORST_SKUS_REPORTED]);
  const row = rows[0];
  return {
    checkedSkus: row.checked,
    uncountedSkus: row.uncounted,
    driftedSkus: row.drifted,
    driftUnits: Number(row.drift_units),
    heldUnits: Number(row.held_units),
    worst: row.worst.map((w) => ({
      sku: String(w.sku),
      available: Number(w.available),
      held: Number(w.held),
      sold: Number(w.sold),
      countedUnits: Number(w.countedUnits),
      drift: Number(w.drift),
    })),
  };
}
