/** Counters the service publishes, in CloudWatch embedded metric format (EMF). */
export const COUNTERS = [
  'CheckoutRequests',
  'OrdersConfirmed',
  'OrdersPendingPayment',
  'PaymentsDeclined',
  'OutOfStock',
  'IdempotentReplays',
  'RequestsShed',
  'RecommendationsDegraded',
  'PaymentDeferredCircuitOpen',
  'PaymentDeferredRetriesExhausted',
  'PaymentDeferredBulkheadFull',
  /** The gateway refused our request (401/403/400...): a misconfiguration; alarm on any. */
  'PaymentRequestsRejected',
  /** A request lost its idempotency lease to a retry and recorded nothing (leases too short?). */
  'CheckoutLeasesLost',
  /** Statements retried after a deadlock or serialization failure. */
  'DatabaseConflictRetries',
  'OutboxPublished',
  'OutboxPublishFailures',
  'OutboxMessagesParked',
  'StuckOrdersDeferred',
] as const;

export type Counter = (typeof COUNTERS)[number];

/** The namespace alarms read: `ResilientShop/Checkout`. */
export const METRICS_NAMESPACE = 'ResilientShop/Checkout';

export class Metrics {
  private counts = new Map<Counter, number>();

  increment(counter: Counter, by = 1): void {
    this.counts.set(counter, (this.counts.get(counter) ?? 0) + by);
  }

  /** Current value of a counter since the last flush (for tests and the status line). */
  value(counter: Counter): number {
    return this.counts.get(counter) ?? 0;
  }

  /**
   * One EMF document with every counter since the last flush and the gauges given,
   * then resets the counters. CircuitBreakerOpen is 1 while the breaker is open or
   * half-open, so an alarm on its maximum fires while the gateway is being avoided.
   */
  flush(gauges: Record<string, number>, now = Date.now()): Record<string, unknown> {
    const values: Record<string, number> = {};
    for (const name of COUNTERS) values[name] = this.counts.get(name) ?? 0;
    this.counts = new Map();
    const all = { ...values, ...gauges };
    return {
      _aws: {
        Timestamp: now,
        CloudWatchMetrics: [
          {
            Namespace: METRICS_NAMESPACE,
            Dimensions: [['Service']],
            Metrics: Object.keys(all).map((Name) => ({ Name, Unit: 'Count' })),
          },
        ],
      },
      Service: 'checkout',
      ...all,
    };
  }
}
