/**
 * The `payment-retry` message: what the checkout service's outbox relay publishes when an
 * order is deferred (service/orders/outcome.ts `outcomeRecord`, and the stuck-order sweep):
 * `{ eventId: "<orderId>/PaymentDeferred", type: "PaymentDeferred", orderId, customerId, amountCents,
 * currency, paymentToken, cause }`.
 *
 * The message is a pointer: the worker charges what the order row says (amount, currency,
 * payment token), read under its row lock, never what the message carries. The fields
 * checked here are those the idempotency record's payload validation covers and the ones
 * logged; the payment token is neither checked, logged nor stored.
 *
 * `zod/mini` rather than `zod`: the same validation in about 15 KB of bundle instead of 450.
 */
import * as z from 'zod/mini';
import { MalformedMessageError } from '../shared/errors';
import { dropInvalidRequestId, optionalRequestId } from '../shared/record-log';

const deferredPaymentSchema = z.looseObject({
  type: z.literal('PaymentDeferred', 'must be PaymentDeferred (the only message of the payment-retry queue)'),
  orderId: z.uuid(),
  amountCents: z.number().check(z.int(), z.nonnegative()),
  currency: z.string().check(z.regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD')),
  /** Why the checkout deferred it (`circuit-open`, `retries-exhausted`, `stuck-in-progress`, ...): logged. */
  cause: z.optional(z.string().check(z.maxLength(100))),
  /** The event's id (`<orderId>/PaymentDeferred`): logged, to trace the message across the relay's and the worker's lines. */
  eventId: z.optional(z.string().check(z.maxLength(200))),
  /**
   * The checkout request that deferred it (absent from older messages and the stuck-order
   * sweep's): logged. One that is not an id the service accepts is dropped, never a reason to refuse.
   */
  requestId: optionalRequestId,
});

/** A validated `PaymentDeferred` message (other fields, the payment token among them, pass untouched). */
export type DeferredPayment = z.infer<typeof deferredPaymentSchema>;

/**
 * Parses and validates a message body.
 *
 * @throws MalformedMessageError naming the message and every problem found (never the body:
 * it carries a payment token)
 */
export function parseDeferredPayment(messageId: string, body: string): DeferredPayment {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    // Not V8's message, nor the error as cause: it quotes the text around the fault.
    throw new MalformedMessageError(messageId, [`body is not JSON (${body.length} characters)`]);
  }
  const result = z.safeParse(deferredPaymentSchema, dropInvalidRequestId(json));
  if (!result.success) {
    throw new MalformedMessageError(
      messageId,
      result.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`),
    );
  }
  return result.data;
}
