import { Pool } from 'pg';
import { execute, statement } from '../db/statement';
import { CheckoutReply } from '../orders/replies';

/** An idempotency key as stored: what a duplicate request needs to decide what to do. */
export interface StoredKey {
  readonly requestHash: string;
  /** The stored reply, once the first request (or the stuck-order sweep) recorded one. */
  readonly reply: CheckoutReply | undefined;
  readonly orderId: string | null;
  /** No request holds the key: its lease expired (its process died) or was released after a failure. */
  readonly leaseFree: boolean;
}

/** The row shape several statements return for a key (see {@link toStoredKey}). */
export interface StoredKeyRow {
  request_hash: string;
  status_code: number | null;
  response: Record<string, unknown> | null;
  order_id: string | null;
  lease_free: boolean | null;
}

export function toStoredKey(row: StoredKeyRow): StoredKey {
  return {
    requestHash: row.request_hash,
    reply:
      row.status_code !== null && row.response !== null
        ? { statusCode: row.status_code, body: row.response }
        : undefined,
    orderId: row.order_id,
    leaseFree: row.lease_free === true,
  };
}

/** An order whose key a request took over, as it stands. */
export interface TakenOrder {
  readonly id: string;
  readonly status: string;
  readonly amountCents: number;
  readonly currency: string;
}

/** The columns of {@link StoredKeyRow}, for statements that return a key. */
export const STORED_KEY_COLUMNS =
  'k.request_hash, k.status_code, k.response, k.order_id, k.locked_until <= now() AS lease_free';

const LOOKUP = statement(
  'idempotency-lookup',
  `SELECT ${STORED_KEY_COLUMNS} FROM idempotency_keys k WHERE k.key = $1`,
);

const TAKE_OVER = statement(
  'idempotency-take-over',
  `
    WITH taken AS (
      UPDATE idempotency_keys
         SET lease_token = $3, locked_until = now() + $4::float8 * interval '1 millisecond'
       WHERE key = $1 AND request_hash = $2 AND status_code IS NULL AND order_id IS NOT NULL
         AND locked_until <= now()
      RETURNING order_id
    )
    SELECT o.id, o.status, o.amount_cents, o.currency FROM taken t JOIN orders o ON o.id = t.order_id`,
);

const RELEASE_LEASE = statement(
  'idempotency-release-lease',
  `
    UPDATE idempotency_keys SET locked_until = now(), lease_token = NULL
     WHERE key = $1 AND lease_token = $2 AND status_code IS NULL`,
);

const COMPLETE = statement(
  'idempotency-complete',
  `
    UPDATE idempotency_keys
       SET status_code = $3, response = $4, completed_at = now(), locked_until = NULL, lease_token = NULL
     WHERE key = $1 AND lease_token = $2 AND status_code IS NULL`,
);

/**
 * The idempotency keys of checkouts. A key is claimed together with its order (see
 * service/orders/reservation.ts) and completed together with the order's outcome (see
 * service/orders/outcome.ts); this store does what happens in between:
 *
 * - a duplicate request looks the key up and replays the stored reply, or waits;
 * - a request whose key has no holder (lease expired or released) takes it over, with a
 *   new lease token, and resumes the order;
 * - a request that cannot finish (the gateway refused it, the final statement failed)
 *   releases its lease, so that a retry resumes at once instead of waiting it out.
 *
 * Every write is fenced on the caller's lease token: a request that lost its lease
 * changes nothing.
 */
export class IdempotencyStore {
  constructor(
    private readonly pool: Pool,
    /** How long a claim or a takeover holds the key. */
    private readonly leaseMs: number,
  ) {}

  async lookup(key: string): Promise<StoredKey | undefined> {
    const { rows } = await execute<StoredKeyRow>(this.pool, LOOKUP, [key]);
    return rows.length === 0 ? undefined : toStoredKey(rows[0]);
  }

  /**
   * Takes over a key that no request holds and whose reply is not stored yet.
   *
   * @returns the key's order, or undefined when another request holds or took it, or it was completed
   */
  async takeOver(key: string, requestHash: string, leaseToken: string): Promise<TakenOrder | undefined> {
    const { rows } = await execute<{
      id: string;
      status: string;
      amount_cents: string;
      currency: string;
    }>(this.pool, TAKE_OVER, [key, requestHash, leaseToken, this.leaseMs]);
    const row = rows[0];
    return (
      row && { id: row.id, status: row.status, amountCents: Number(row.amount_cents), currency: row.currency }
    );
  }

  /** Lets a retry resume the key at once. A no-op for a request that no longer holds it. */
  async releaseLease(key: string, leaseToken: string): Promise<void> {
    await execute(this.pool, RELEASE_LEASE, [key, leaseToken]);
  }

  /**
   * Stores the reply for an order whose outcome is already recorded (by the stuck-order
   * sweep of a release that stored none).
   *
   * @returns whether the caller still held the key
   */
  async complete(key: string, leaseToken: string, reply: CheckoutReply): Promise<boolean> {
    const result = await execute(this.pool, COMPLETE, [key, leaseToken, reply.statusCode, reply.body]);
    return result.rowCount === 1;
  }
}
