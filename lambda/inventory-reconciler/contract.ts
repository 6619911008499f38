/**
 * What the inventory reconciler and its construct (lib/constructs/inventory-reconciler.ts)
 * agree on: the environment, the metrics, the database limits. Pure, with no imports, so
 * the construct can use it at synth without pulling in the handler.
 */

/** The worker's service name: Powertools' `service` dimension of every metric, and its log key. */
export const RECONCILER_SERVICE = 'inventory-reconciler';

/** The dimension Powertools adds to every metric (value {@link RECONCILER_SERVICE}). */
export const SERVICE_DIMENSION = 'service';

/** The EMF namespace of the reconciler's metrics unless the construct is told otherwise. */
export const DEFAULT_INVENTORY_NAMESPACE = 'ResilientShop/Inventory';

/** Metrics each run publishes (all `Count`), in `POWERTOOLS_METRICS_NAMESPACE`. */
export const RECONCILER_METRICS = {
  /**
   * Units of stock the ledger cannot account for, summed over SKUs as absolute values:
   * per SKU, available + held + sold minus what its last count recorded. 0 when consistent.
   */
  drift: 'InventoryDrift',
  /** SKUs whose drift is not 0. */
  driftedSkus: 'DriftedSkus',
  /** SKUs never counted (`counted_units` NULL: inserted without PUT /admin/inventory), not checked. */
  uncountedSkus: 'UncountedSkus',
  /** Units reserved by unfinished orders (PAYMENT_IN_PROGRESS, PENDING_PAYMENT) at the time of the run. */
  heldUnits: 'HeldUnits',
  /** PENDING_PAYMENT orders cancelled by this run, their reservations released. */
  ordersCancelled: 'OrdersCancelled',
  /** Units those cancellations put back in stock. */
  unitsReleased: 'UnitsReleased',
  /** 1 when the run failed (it could not connect, or a statement failed), else 0. */
  runFailed: 'RunFailed',
  /** 1 when the database was read-only (a global secondary, a demoted primary) and nothing was done, else 0. */
  runSkipped: 'RunSkipped',
} as const;

/** The `reason` of the `OrderCancelled` event a cancellation sends to order-events. */
export const CANCELLATION_REASON = 'payment-not-completed';

/**
 * Orders one batch looks at (one statement reads them; each is then cancelled by a
 * statement of its own, which locks only that order's inventory rows).
 */
export const RELEASE_BATCH_SIZE = 100;

/** The reconciler's database limits: one connection per run, closed at its end. */
export const RECONCILER_DATABASE = {
  /** Opening the connection, IAM token signing and TLS included. */
  DB_CONNECT_TIMEOUT_MS: 10_000,
  /**
   * Each statement. The drift statement aggregates every order line, which grows with
   * the order history: it is what this bounds.
   */
  DB_STATEMENT_TIMEOUT_MS: 20_000,
} as const;

/**
 * How long before the function's timeout the run stops starting cancellations: one
 * started just before may take a statement timeout (waiting for an inventory row), the
 * drift statement another, and the metrics must still be written.
 */
export const DRIFT_RESERVE_MS = 2 * RECONCILER_DATABASE.DB_STATEMENT_TIMEOUT_MS + 5_000;

/**
 * The shortest function timeout that fits one run: the connection, a batch read, and the
 * reserve for the last cancellation and the drift statement.
 */
export function reconcilerMinimumTimeoutMs(): number {
  const { DB_CONNECT_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS } = RECONCILER_DATABASE;
  return DB_CONNECT_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS + DRIFT_RESERVE_MS;
}

/** Environment variables the construct sets beyond the database's (DB_HOST, DB_PORT, ...). */
export const RECONCILER_ENV = {
  /** Milliseconds a PENDING_PAYMENT order may wait untouched before it is cancelled. */
  holdMs: 'HOLD_MS',
} as const;
