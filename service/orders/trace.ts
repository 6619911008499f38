import { orderIdForKey } from './order-id';

/**
 * The log field that carries the request id, in the service's lines (fastify's
 * `requestIdLogLabel`, instead of its default `reqId`) and in the workers' lines about a
 * message the request produced. One name everywhere, so that one Logs Insights query
 * finds a request's lines in every log group: docs/observability.md, "Tracing an order".
 */
export const REQUEST_ID_FIELD = 'requestId';

/**
 * The longest request id taken from a client's `x-request-id` header. The id goes into
 * every log line of the request and into the order's outbox message, so it is bounded;
 * the workers drop (never refuse) a longer one.
 */
export const REQUEST_ID_MAX_LENGTH = 128;

/**
 * What a client's `x-request-id` may hold to be used as the request id: the characters of
 * UUIDs, ULIDs, hex ids and AWS trace headers (`Root=1-...;Parent=...`), at most
 * {@link REQUEST_ID_MAX_LENGTH}. Nothing that needs escaping in a log line, a JSON message
 * or a Logs Insights string.
 */
const ACCEPTED_REQUEST_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:;=+/@-]{0,${REQUEST_ID_MAX_LENGTH - 1}}$`);

/**
 * The request id a client asked for in `x-request-id`, when it is acceptable (see
 * {@link ACCEPTED_REQUEST_ID}); otherwise undefined, and the service generates one (a
 * UUID). A repeated header is not used: node joins it with commas, which are refused.
 */
export function acceptedRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && ACCEPTED_REQUEST_ID.test(header) ? header : undefined;
}

/**
 * An `Idempotency-Key` the checkout route accepts (the route's schema pattern): 1 to 255
 * printable ASCII characters.
 */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7e]{1,255}$';
const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/**
 * The order id of a request's `Idempotency-Key` header when it is one the route accepts
 * (see {@link orderIdForKey}), else undefined: a missing or invalid key names no order.
 */
export function orderIdOfHeader(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && IDEMPOTENCY_KEY.test(header) ? orderIdForKey(header) : undefined;
}

/**
 * What ties one checkout's log lines and messages together: its order id (known before
 * any work, from the key) and the id of the request. The request id travels with the
 * order's outbox message (`requestId` in the message body), so the workers' lines about
 * the order carry it too.
 */
export interface CheckoutTrace {
  /** The `Idempotency-Key` the order id was derived from. */
  readonly key: string;
  /** `orderIdForKey(key)`. */
  readonly orderId: string;
  /** The request id (the client's `x-request-id` when acceptable, else a UUID). */
  readonly requestId: string;
}

/**
 * The trace of a checkout, for a key already known to be acceptable.
 *
 * @param orderId - `orderIdForKey(key)` when the caller has computed it (a SHA-1: the
 *   checkout is CPU-bound, so it is computed once per request); computed here otherwise
 */
export function checkoutTrace(key: string, requestId: string, orderId = orderIdForKey(key)): CheckoutTrace {
  return { key, orderId, requestId };
}
