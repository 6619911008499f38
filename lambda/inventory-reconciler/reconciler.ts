import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import type { ClientBase } from 'pg';
import { integerEnv } from '../shared/env';
import { CANCELLATION_REASON, DRIFT_RESERVE_MS, RECONCILER_ENV, RECONCILER_METRICS } from './contract';
import { type DriftReport, measureDrift } from './drift';
import { type CancelledOrder, type ReleaseResult, releaseExpiredOrders } from './release';

/** The logger calls the reconciler makes (Powertools' Logger; a fake in tests). */
export type ReconcilerLogger = Pick<Logger, 'info' | 'warn' | 'error' | 'addContext'>;

/** The metric calls the reconciler makes (Powertools' Metrics, as EMF; a fake in tests). */
export interface ReconcilerMetrics {
  addMetric(name: string, unit: Parameters<Metrics['addMetric']>[1], value: number): unknown;
  publishStoredMetrics(): unknown;
}

/** A database session for one run: the client, and how to end it. */
export interface ReconcilerSession {
  readonly db: ClientBase;
  close(): Promise<void>;
}

/** What the reconciler needs from the outside; `index.ts` builds the real ones once per container. */
export interface ReconcilerDeps {
  /** Opens the run's database session (a new connection per run: see {@link createReconciler}). */
  readonly connect: () => Promise<ReconcilerSession>;
  readonly logger: ReconcilerLogger;
  readonly metrics: ReconcilerMetrics;
  /** Milliseconds a PENDING_PAYMENT order may wait untouched before it is cancelled. */
  readonly holdMs: number;
  /** Orders read per batch. */
  readonly batchSize: number;
  /** Time kept back at the end of the invocation for the drift statement and the metrics. */
  readonly reserveMs?: number;
  readonly now?: () => number;
}

/** What one run did. */
export type ReconcileResult =
  | { readonly skipped: 'read-only' }
  | { readonly skipped?: undefined; readonly release: ReleaseResult; readonly drift: DriftReport };

/** The environment `index.ts` reads beyond the database's (set by lib/constructs/inventory-reconciler.ts). */
export interface ReconcilerEnv {
  readonly holdMs: number;
}

export function readReconcilerEnv(env: Readonly<Record<string, string | undefined>>): ReconcilerEnv {
  return { holdMs: integerEnv(env, RECONCILER_ENV.holdMs, undefined) };
}

/** Whether the session's database refuses writes: a global secondary, or a primary demoted by a switchover. */
async function readOnly(db: ClientBase): Promise<boolean> {
  const { rows } = await db.query<{ read_only: boolean }>(
    "/* inventory-reconciler-role */ SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS read_only",
  );
  return rows[0].read_only;
}

/**
 * The scheduled inventory reconciler. Each run, on a database session of its own:
 *
 * 1. **Skips** when the database is read-only (the standby region's global secondary, or
 *    a primary a switchover demoted): nothing to release there, and its data is the
 *    primary's, whose own reconciler reports it. `RunSkipped` = 1.
 * 2. **Releases** the reservations of PENDING_PAYMENT orders untouched for longer than the
 *    hold: each is CANCELLED, its units go back to stock once, and an `OrderCancelled`
 *    event goes through the outbox to order-events (lambda/inventory-reconciler/release.ts).
 *    Oldest first, until none is left or the invocation's time runs short.
 * 3. **Recounts** the stock ledger and reports drift: per SKU, available + held + sold
 *    against its last count (lambda/inventory-reconciler/drift.ts).
 *
 * Metrics (EMF, one record per run): `OrdersCancelled`, `UnitsReleased`, `InventoryDrift`,
 * `DriftedSkus`, `UncountedSkus`, `HeldUnits`, `RunSkipped`, and `RunFailed` (0, or 1 when
 * the run failed: it then rethrows, so Lambda counts an error). Cancellations are counted
 * even when a later step fails: each committed on its own.
 *
 * Safe to run twice at once (reserved concurrency 1 is a bulkhead, not the guarantee):
 * every cancellation is fenced on the order's row (see release.ts), and the recount only
 * reads. No advisory lock: it would have to be taken by every writer to mean anything,
 * and a session lock pins an RDS Proxy connection.
 *
 * One connection per run, closed at its end: a run every few minutes does not need a pool
 * kept open (and its IAM token re-signed) while the function sits frozen in between.
 */
export function createReconciler(
  deps: ReconcilerDeps,
): (event?: unknown, context?: Context) => Promise<ReconcileResult> {
  const { logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const reserveMs = deps.reserveMs ?? DRIFT_RESERVE_MS;
  return async (_event, context) => {
    if (context) logger.addContext(context);
    const remainingMs = context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY;
    const deadline = now() + remainingMs - reserveMs;
    const cancelled: CancelledOrder[] = [];
    let session: ReconcilerSession | undefined;
    let failed = true;
    let skipped = false;
    try {
      session = await deps.connect();
      if (await readOnly(session.db)) {
        skipped = true;
        failed = false;
        logger.info('database is read-only (standby or demoted region): nothing reconciled');
        return { skipped: 'read-only' };
      }
      const release = await releaseExpiredOrders(session.db, {
        holdMs: deps.holdMs,
        batchSize: deps.batchSize,
        deadline,
        reason: CANCELLATION_REASON,
        now,
        onCancelled: (order) => {
          cancelled.push(order);
          logger.info('order cancelled: payment not completed within the hold time', {
            orderId: order.orderId,
            unitsReleased: order.unitsReleased,
            holdMs: deps.holdMs,
          });
        },
      });
      if (!release.complete) {
        logger.warn('stopped before every expired order was looked at: the next run continues', {
          cancelled: release.cancelled.length,
        });
      }
      const drift = await measureDrift(session.db);
      metrics.addMetric(RECONCILER_METRICS.drift, MetricUnit.Count, drift.driftUnits);
      metrics.addMetric(RECONCILER_METRICS.driftedSkus, MetricUnit.Count, drift.driftedSkus);
      metrics.addMetric(RECONCILER_METRICS.uncountedSkus, MetricUnit.Count, drift.uncountedSkus);
      metrics.addMetric(RECONCILER_METRICS.heldUnits, MetricUnit.Count, drift.heldUnits);
      const summary = {
        ordersCancelled: release.cancelled.length,
        unitsReleased: sumUnits(release.cancelled),
        ordersSkipped: release.skipped,
        checkedSkus: drift.checkedSkus,
        uncountedSkus: drift.uncountedSkus,
        driftedSkus: drift.driftedSkus,
        driftUnits: drift.driftUnits,
        heldUnits: drift.heldUnits,
      };
      if (drift.driftedSkus > 0) {
        logger.error('inventory drift: the stock ledger does not add up', { ...summary, worst: drift.worst });
      } else {
        logger.info('inventory reconciled', summary);
      }
      failed = false;
      return { release, drift };
    } catch (err) {
      logger.error('inventory reconciliation failed', {
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        ordersCancelled: cancelled.length,
      });
      throw err;
    } finally {
      await session?.close().catch(() => undefined);
      metrics.addMetric(RECONCILER_METRICS.ordersCancelled, MetricUnit.Count, cancelled.length);
      metrics.addMetric(RECONCILER_METRICS.unitsReleased, MetricUnit.Count, sumUnits(cancelled));
      metrics.addMetric(RECONCILER_METRICS.runSkipped, MetricUnit.Count, skipped ? 1 : 0);
      metrics.addMetric(RECONCILER_METRICS.runFailed, MetricUnit.Count, failed ? 1 : 0);
      metrics.publishStoredMetrics();
    }
  };
}

const sumUnits = (orders: readonly CancelledOrder[]): number =>
  orders.reduce((sum, o) => sum + o.unitsReleased, 0);
