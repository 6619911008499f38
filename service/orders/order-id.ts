import { createHash } from 'node:crypto';

/**
 * The namespace of order ids (a fixed, random UUID): ids of this service never collide
 * with UUIDv5s of the same keys in another namespace.
 */
export const ORDER_ID_NAMESPACE = '6f1d7c3a-5b8e-4f2a-9c4d-2e7a1b9f0c58';

/**
 * The order id of a checkout's `Idempotency-Key`: a UUIDv5 (RFC 9562, SHA-1 of the
 * namespace and the key), so the same key always names the same order.
 *
 * Why not a random id: the order id is the payment gateway's idempotency key. After a
 * regional failover that lost the last writes (Aurora Global Database's RPO, typically
 * about a second), a client retrying its checkout finds no trace of its key in the
 * promoted database and places the order again. With a random id that second order would
 * be charged a second time; with this one it has the same id, and the gateway answers
 * with the charge it already took. A key names one order for as long as keys are kept
 * (they are never deleted), as `idempotency_keys.key` and `orders.idempotency_key` are
 * unique.
 *
 * Keys are client secrets of a sort: an id derived from a guessable key is guessable.
 * Clients send random keys (UUIDs), as the API asks.
 */
export function orderIdForKey(key: string): string {
  const namespace = Buffer.from(ORDER_ID_NAMESPACE.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(namespace).update(key, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
