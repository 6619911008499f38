import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { ConflictRetryOptions, retryOnConflict } from './db/transaction';
import { IdempotencyStore, StoredKey } from './idempotency/store';
import { Metrics } from './metrics';
import { CheckoutRequest, Order, mergeLines, requestHash } from './orders/order';
import { orderIdForKey } from './orders/order-id';
import { RecordableOutcome, Recorded, recordOutcome } from './orders/outcome';
import {
  AcceptedStatus,
  CheckoutReply,
  KEY_REUSED,
  accepted,
  declined,
  gatewayRejected,
  inProgress,
  invalidRequest,
  outOfStock,
} from './orders/replies';
import { DraftOrder, claimOrder } from './orders/reservation';
import { CheckoutTrace } from './orders/trace';
import { ChargeOutcome, PaymentGateway } from './payment-client';
import { RecommendationsResult, Recommender } from './recommendations-client';

export type { CheckoutRequest } from './orders/order';
export type { CheckoutReply } from './orders/replies';
export { requestHash } from './orders/order';
/** @deprecated import from './orders/stuck-order-sweep' (kept until server.ts moves). */

export interface CheckoutDeps {
  readonly pool: Pool;
  readonly payments: PaymentGateway;
  readonly recommender: Recommender;
  readonly metrics: Metrics;
  readonly currency: string;
  /** How long a claim holds its key; config refuses one shorter than the worst-case checkout. */
  readonly leaseMs: number;
  /** How long a duplicate request waits for the first one's reply before a 503. */
  readonly duplicateWaitMs: number;
  readonly retryAfterSeconds: number;
}

/** The customer's recommendations, fetched on first call and shared by later ones. */
type Recommendations = () => Promise<RecommendationsResult>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The checkout: two statements around the payment call, no transaction held open and no
 * connection held while the gateway is called.
 *
 * 1. **Claim** (service/orders/reservation.ts): the idempotency key with a lease token,
 *    every line reserved with inventory rows locked in SKU order, the order inserted as
 *    PAYMENT_IN_PROGRESS; or the 409 stored; or nothing, when the key exists.
 * 2. **Payment** through the resilient gateway client, the order id as the gateway's
 *    idempotency key, recommendations fetched meanwhile (not before the claim: a checkout
 *    that is shed, out of stock or a replay does not need them).
 * 3. **Record** (service/orders/outcome.ts): CONFIRMED, PAYMENT_DECLINED (reservation
 *    released) or PENDING_PAYMENT (deferred to payment-retry), with its outbox message
 *    and the reply under the key, only while this request still holds the key's lease
 *    and the order is still PAYMENT_IN_PROGRESS: the outcome is recorded once whatever
 *    the timing.
 *
 * A duplicate waits for the stored reply; a key no request holds (its lease expired or
 * was released) is taken over with a new lease token and its order resumed.
 *
 * When the gateway rejects the request itself (401/403/400: a misconfiguration), the
 * order is neither declined nor failed: it stays PAYMENT_IN_PROGRESS with its stock
 * reserved, the lease is released and the client gets a 503 PAYMENT_GATEWAY_REJECTED
 * with Retry-After, nothing stored under the key. Failing it would lose a sale to our
 * own mistake, and declining it would tell the customer their card was refused. The
 * client's retry (same key) resumes the same order and pays once the operator fixed the
 * configuration; an order nobody retries is deferred to payment-retry by the stuck-order
 * sweep after STUCK_ORDER_AFTER_MS, like one whose request died. Rejections also count
 * against the breaker (see errors.ts), so a misconfiguration soon defers new orders
 * without calling the gateway. `PaymentRequestsRejected` counts them; alarm on any.
 *
 * The same release happens when recording the outcome fails (database error): the retry
 * resumes at once instead of waiting out the lease, and pays again with the same order
 * id, which the gateway answers with the charge it already took.
 */
export class CheckoutService {
  private readonly store: IdempotencyStore;
  private readonly conflictRetry: ConflictRetryOptions;

  constructor(private readonly deps: CheckoutDeps) {
    this.store = new IdempotencyStore(deps.pool, deps.leaseMs);
    this.conflictRetry = { onRetry: () => deps.metrics.increment('DatabaseConflictRetries') };
  }

  /**
   * @param trace - the request's trace (service/orders/trace.ts): its request id goes into
   *   the order's outbox message, and its order id is used when it is this key's (it was
   *   computed once, for the request's log lines); without it the order id is computed here
   */
  async checkout(key: string, request: CheckoutRequest, trace?: CheckoutTrace): Promise<CheckoutReply> {
    const { metrics } = this.deps;
    metrics.increment('CheckoutRequests');
    const cart = mergeLines(request.items);
    if ('invalid' in cart) return invalidRequest(cart.invalid);
    let fetched: Promise<RecommendationsResult> | undefined;
    const recommendations = () => (fetched ??= this.deps.recommender.recommend(request.customerId));
    const draft: DraftOrder = {
      // Derived from the key: a retry after a failover that lost the order pays with the same id.
      id: trace?.key === key ? trace.orderId : orderIdForKey(key),
      key,
      requestHash: requestHash(request),
      leaseToken: randomUUID(),
      customerId: request.customerId,
      currency: this.deps.currency,
      paymentToken: request.paymentToken,
      items: request.items,
      requestId: trace?.requestId,
    };
    const claim = await retryOnConflict(
      () => claimOrder(this.deps.pool, draft, cart, this.deps.leaseMs),
      this.conflictRetry,
    );
    switch (claim.kind) {
      case 'created':
        return this.pay(claim.order, recommendations);
      case 'out-of-stock':
        metrics.increment('OutOfStock');
        return outOfStock(claim.sku, claim.reason);
      case 'existing':
        return this.awaitStoredReply(draft, recommendations, claim.stored);
    }
  }

  /**
   * A key that exists: replay its reply, take it over when no request holds it, or wait
   * (bounded by duplicateWaitMs) for the request that holds it.
   *
   * @param seen - the key as already read, if it was
   */
  private async awaitStoredReply(
    draft: DraftOrder,
    recommendations: Recommendations,
    seen: StoredKey | undefined,
  ): Promise<CheckoutReply> {
    const deadline = Date.now() + this.deps.duplicateWaitMs;
    for (let attempt = 0; ; attempt++) {
      const stored = attempt === 0 && seen ? seen : await this.store.lookup(draft.key);
      if (stored) {
        if (stored.requestHash !== draft.requestHash) return KEY_REUSED;
        if (stored.reply) {
          this.deps.metrics.increment('IdempotentReplays');
          return { ...stored.reply, replayed: true };
        }
        if (stored.leaseFree && stored.orderId) {
          // draft.leaseToken holds nothing now (the claim found the key taken, or a retry took
          // it over from this request): it becomes this request's lease.
          const taken = await this.store.takeOver(draft.key, draft.requestHash, draft.leaseToken);
          if (taken) {
            const order = {
              ...draft,
              id: taken.id,
              amountCents: taken.amountCents,
              currency: taken.currency,
            };
            return this.resume(order, taken.status, recommendations);
          }
        }
      }
      if (Date.now() > deadline) return inProgress(this.deps.retryAfterSeconds);
      await sleep(Math.min(200, 20 * 2 ** Math.min(attempt, 4)));
    }
  }

  /** An order whose key this request took over: pay it, or answer with the outcome it already has. */
  private async resume(
    order: Order,
    status: string,
    recommendations: Recommendations,
  ): Promise<CheckoutReply> {
    if (status === 'PAYMENT_IN_PROGRESS') return this.pay(order, recommendations);
    // Recorded without a reply under its key (only the stuck-order sweep of an earlier
    // release did that): the reply follows from the status.
    const reply =
      status === 'PAYMENT_DECLINED'
        ? declined(order.id, 'declined')
        : accepted(order.id, status as AcceptedStatus, await recommendations());
    await this.store.complete(order.key, order.leaseToken, reply);
    return reply;
  }

  /** Payment, then the fenced record of its outcome. */
  private async pay(order: Order, recommendations: Recommendations): Promise<CheckoutReply> {
    const recommended = recommendations(); // in parallel with the payment
    const { metrics } = this.deps;
    let outcome: ChargeOutcome;
    try {
      outcome = await this.deps.payments.charge({
        orderId: order.id,
        amountCents: order.amountCents,
        currency: order.currency,
        paymentToken: order.paymentToken,
      });
    } catch (err) {
      await this.releaseLease(order);
      throw err;
    }
    if (outcome.kind === 'rejected') {
      metrics.increment('PaymentRequestsRejected');
      await this.releaseLease(order);
      return gatewayRejected(this.deps.retryAfterSeconds);
    }
    const recs = await recommended;
    if (recs.degraded) metrics.increment('RecommendationsDegraded');
    const reply = this.replyFor(order, outcome, recs);
    let result: Recorded;
    try {
      result = await retryOnConflict(
        () => recordOutcome(this.deps.pool, order, outcome, reply),
        this.conflictRetry,
      );
    } catch (err) {
      await this.releaseLease(order);
      throw err;
    }
    if (result.recorded) {
      this.count(outcome);
      return reply;
    }
    // Another request holds the order now: answer with what it stored, or wait for it.
    metrics.increment('CheckoutLeasesLost');
    return result.stored
      ? { ...result.stored, replayed: true }
      : this.awaitStoredReply(order, recommendations, undefined);
  }

  /** Best effort: if the database is unreachable, the lease runs out on its own. */
  private async releaseLease(order: Order): Promise<void> {
    await this.store.releaseLease(order.key, order.leaseToken).catch(() => undefined);
  }

  private replyFor(order: Order, outcome: RecordableOutcome, recs: RecommendationsResult): CheckoutReply {
    if (outcome.kind === 'declined') return declined(order.id, outcome.reason);
    return accepted(order.id, outcome.kind === 'charged' ? 'CONFIRMED' : 'PENDING_PAYMENT', recs);
  }

  private count(outcome: RecordableOutcome): void {
    const { metrics } = this.deps;
    if (outcome.kind === 'charged') metrics.increment('OrdersConfirmed');
    else if (outcome.kind === 'declined') metrics.increment('PaymentsDeclined');
    else {
      metrics.increment('OrdersPendingPayment');
      metrics.increment(
        outcome.cause === 'circuit-open'
          ? 'PaymentDeferredCircuitOpen'
          : outcome.cause === 'bulkhead-full'
            ? 'PaymentDeferredBulkheadFull'
            : 'PaymentDeferredRetriesExhausted',
      );
    }
  }
}
