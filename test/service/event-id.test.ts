import { eventIdOf } from '../../service/outbox/relay';

/**
 * The id consumers dedupe on names the event (its order and type), not the outbox row:
 * docs/checkout-service.md#the-outbox. The relay's tests and the regional failover test
 * show it on the wire; these hold the rule itself.
 */
describe('the outbox event id', () => {
  const orderId = '2aeb85f3-c3eb-5d2a-b2f1-345c0862a6de';

  test('is the order and the event type, whatever row carries it', () => {
    // the same event in two rows (written again after a restore lost the first)
    expect(eventIdOf({ id: '17', payload: { type: 'OrderConfirmed', orderId } })).toBe(
      `${orderId}/OrderConfirmed`,
    );
    expect(eventIdOf({ id: '90001', payload: { type: 'OrderConfirmed', orderId, chargeId: 'ch_1' } })).toBe(
      `${orderId}/OrderConfirmed`,
    );
  });

  test('differs between the events of one order, and between orders', () => {
    const ids = new Set([
      eventIdOf({ id: '1', payload: { type: 'PaymentDeferred', orderId } }),
      eventIdOf({ id: '2', payload: { type: 'OrderConfirmed', orderId } }),
      eventIdOf({ id: '3', payload: { type: 'OrderCancelled', orderId } }),
      eventIdOf({
        id: '4',
        payload: { type: 'OrderConfirmed', orderId: 'a4b6c8d0-0000-5000-8000-000000000001' },
      }),
    ]);
    expect(ids.size).toBe(4);
  });

  test.each([
    ['no orderId', { type: 'OrderConfirmed' }],
    ['an empty orderId', { type: 'OrderConfirmed', orderId: '' }],
    ['a numeric orderId', { type: 'OrderConfirmed', orderId: 42 }],
    ['no type', { orderId }],
  ])('keeps the row id for a payload with %s', (_case, payload) => {
    expect(eventIdOf({ id: '5', payload })).toBe('outbox-5');
  });
});
