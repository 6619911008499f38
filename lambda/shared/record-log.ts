/**
 * Per-record log keys for the SQS workers: every line written while one record is handled
 * carries that record's `messageId`, and once its body is parsed its `orderId`, `eventId`
 * and the `requestId` of the checkout that produced it, so that one Logs Insights query
 * finds an order's whole path across the service's and the workers' log groups
 * (docs/observability.md, "Tracing an order").
 *
 * Why not Powertools' `logger.appendKeys()`: the batch processor runs a batch's records
 * in parallel (`BatchProcessor`'s default `processInParallel: true`), and the Logger's
 * temporary keys are one set per Logger instance, shared by every record in flight (they
 * are per invocation only under Lambda's multi-concurrency mode). Keys appended for one
 * record would be written on another's lines, and cleared under it. Here each record runs
 * in an AsyncLocalStorage scope of its own (it follows the record's promises, the
 * idempotency layer's and the SDK's calls included), and the scoped logger adds that
 * record's keys to each line at the moment it is written: nothing to clear, nothing shared.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as z from 'zod/mini';
import { REQUEST_ID_MAX_LENGTH, acceptedRequestId } from '../../service/orders/trace';

/** The keys every log line about one SQS record carries (names shared with the service's lines). */
export interface RecordLogKeys {
  /** SQS's id of this delivery (a relay re-send and a redrive from the DLQ get new ones). */
  readonly messageId: string;
  /** The order the message is about. */
  orderId?: string;
  /** The event's id (`<orderId>/<type>`, service/outbox/relay.ts), the same in every copy of the message. */
  eventId?: string;
  /** The checkout request that produced the message, when it carries one. */
  requestId?: string;
}

/**
 * The `requestId` field of a message schema: optional (older messages, and those no
 * request produced, have none), a string of 1 to the service's REQUEST_ID_MAX_LENGTH.
 * Parse the body through {@link dropInvalidRequestId} first, so that any other value is
 * read as absent: a trace field never sends a message to the DLQ.
 */
export const optionalRequestId = z.optional(
  z.string().check(z.minLength(1), z.maxLength(REQUEST_ID_MAX_LENGTH)),
);

/**
 * A parsed message body without its `requestId` when that is not a request id the service
 * itself would accept (`acceptedRequestId`, service/orders/trace.ts: the one rule for
 * both sides); the body is not modified, a copy is returned.
 *
 * Why not zod's `catch`: it adds about 11 KB of zod to every worker bundle, which the
 * payment-retry bundle's 250 KB budget has no room for.
 */
export function dropInvalidRequestId(json: unknown): unknown {
  if (json === null || typeof json !== 'object' || Array.isArray(json) || !('requestId' in json)) return json;
  const { requestId, ...rest } = json as Record<string, unknown>;
  return typeof requestId === 'string' && acceptedRequestId(requestId) !== undefined ? json : rest;
}

const scope = new AsyncLocalStorage<RecordLogKeys>();

/** The longest value {@link traceKeysOfBody} takes from a body it could not validate (the schemas' eventId bound). */
const MAX_TRACE_VALUE_LENGTH = 200;

/**
 * Runs `work` (one record's handling) in a scope of its own: lines written by a
 * {@link recordScopedLogger} while it runs carry `messageId`, and the keys added with
 * {@link addRecordKeys}. The scope ends with `work`; a record started later gets a new one.
 */
export function inRecordScope<T>(messageId: string, work: () => Promise<T>): Promise<T> {
  return scope.run({ messageId }, work);
}

/** Adds keys to the current record's scope (outside one, does nothing). Undefined values are ignored. */
export function addRecordKeys(keys: Omit<Partial<RecordLogKeys>, 'messageId'>): void {
  const current = scope.getStore();
  if (!current) return;
  if (keys.orderId !== undefined) current.orderId = keys.orderId;
  if (keys.eventId !== undefined) current.eventId = keys.eventId;
  if (keys.requestId !== undefined) current.requestId = keys.requestId;
}

/** The current record's keys, or undefined outside a record. */
export function currentRecordKeys(): Readonly<RecordLogKeys> | undefined {
  return scope.getStore();
}

/**
 * The trace keys of a message body, best effort, for a message that failed validation:
 * a malformed message is logged with the order it names, when it names one (a bounded
 * string), so the order's trace shows it. Nothing else of the body is read (a payment-retry
 * body carries a payment token).
 */
export function traceKeysOfBody(body: string): Omit<Partial<RecordLogKeys>, 'messageId'> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof json !== 'object' || json === null) return {};
  const field = (name: string) => {
    const value = (json as Record<string, unknown>)[name];
    return typeof value === 'string' && value.length <= MAX_TRACE_VALUE_LENGTH ? value : undefined;
  };
  return { orderId: field('orderId'), eventId: field('eventId'), requestId: field('requestId') };
}

/** The Powertools Logger methods that write a line, which {@link recordScopedLogger} scopes. */
const LINE_METHODS: ReadonlySet<PropertyKey> = new Set([
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'critical',
]);

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** Loggers returned by {@link recordScopedLogger}, so that wrapping one again is a no-op. */
const scopedLoggers = new WeakSet<object>();

/**
 * The line-writing call `method` of `logger`, with the current record's keys added as the
 * first extra attributes (a field the call names itself wins); outside a record, unchanged.
 * Powertools takes a message and then attribute objects, or one Error or string.
 */
function withRecordKeys(logger: object, method: Method): Method {
  return (input, ...extra) => {
    const keys = scope.getStore();
    if (!keys) return method.call(logger, input, ...extra);
    const [first, ...rest] = extra;
    let attributes: object;
    if (first === undefined || first === null) attributes = { ...keys };
    else if (first instanceof Error) attributes = { ...keys, error: first };
    else if (typeof first === 'object') attributes = { ...keys, ...first };
    else attributes = { ...keys, extra: first };
    return method.call(logger, input, attributes, ...rest);
  };
}

/**
 * `logger` (a Powertools Logger, or a fake in tests) with every line it writes while a
 * record is handled carrying that record's keys ({@link inRecordScope}); lines written
 * outside a record are unchanged, and every other member is the logger's own. Wrapping a
 * scoped logger again returns it as it is.
 *
 * Give it to whatever logs during a record (the handler's own lines, the `apply` step):
 * a line written through the unwrapped logger carries no record keys.
 */
export function recordScopedLogger<L extends object>(logger: L): L {
  if (scopedLoggers.has(logger)) return logger;
  // Methods run with the logger itself as `this` (Powertools' Logger uses private fields).
  const calls = new Map<PropertyKey, { method: Method; call: Method }>();
  const proxy = new Proxy(logger, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = value as Method;
      let cached = calls.get(property);
      if (cached?.method !== method) {
        const call = LINE_METHODS.has(property) ? withRecordKeys(target, method) : method.bind(target);
        cached = { method, call };
        calls.set(property, cached);
      }
      return cached.call;
    },
  });
  scopedLoggers.add(proxy);
  return proxy;
}
