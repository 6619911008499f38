import { COUNTERS, METRICS_NAMESPACE, Metrics } from '../../service/metrics';

describe('Metrics', () => {
  test('counts, reports and resets on flush', () => {
    const metrics = new Metrics();
    metrics.increment('PaymentRequestsRejected');
    metrics.increment('OrdersConfirmed', 3);
    expect(metrics.value('PaymentRequestsRejected')).toBe(1);
    expect(metrics.value('OrdersConfirmed')).toBe(3);

    const doc = metrics.flush({ CircuitBreakerOpen: 1 }, 1_700_000_000_000) as Record<string, unknown> & {
      _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] };
    };
    expect(doc._aws.Timestamp).toBe(1_700_000_000_000);
    expect(doc._aws.CloudWatchMetrics[0].Namespace).toBe(METRICS_NAMESPACE);
    expect(doc.Service).toBe('checkout');
    expect(doc.PaymentRequestsRejected).toBe(1);
    expect(doc.OrdersConfirmed).toBe(3);
    expect(doc.CircuitBreakerOpen).toBe(1);
    // every counter is published, zero or not, so an alarm on it always has data
    const names = doc._aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name);
    expect(names).toEqual([...COUNTERS, 'CircuitBreakerOpen']);

    expect(metrics.value('PaymentRequestsRejected')).toBe(0);
  });

  test('publishes the counters the checkout alarms read', () => {
    expect(COUNTERS).toEqual(
      expect.arrayContaining(['PaymentRequestsRejected', 'CheckoutLeasesLost', 'DatabaseConflictRetries']),
    );
  });
});
