/**
 * The `order-events` message the checkout service's outbox relay publishes:
 * `{ eventId: "<orderId>/<type>", type: "OrderConfirmed" | "OrderPaymentDeclined" | ..., orderId, ... }`.
 *
 * `zod/mini` rather than `zod`: the same validation, and about 15 KB in the bundle
 * instead of about 450 KB (the classic API's methods cannot be tree-shaken).
 */
import * as z from 'zod/mini';
import { MalformedMessageError } from '../shared/errors';
import { dropInvalidRequestId, optionalRequestId } from '../shared/record-log';

/**
 * Event types are `Order` followed by a PascalCase word (`OrderConfirmed`,
 * `OrderPaymentDeclined`, and those later issues add): a type this worker has not heard
 * of is still applied (forwarded), while a message that is not an order event at all
 * (`PaymentDeferred` sent to the wrong queue) is malformed.
 */
const ORDER_EVENT_TYPE = /^Order[A-Z][A-Za-z]{1,60}$/;

const orderEventSchema = z.looseObject({
  eventId: z.string().check(z.minLength(1), z.maxLength(200)),
  type: z.string().check(z.regex(ORDER_EVENT_TYPE, 'must be Order<Something>, such as OrderConfirmed')),
  orderId: z.uuid(),
  requestId: optionalRequestId,
});

/**
 * A validated order event; fields beyond those checked are passed on untouched. `requestId`
 * (the checkout request behind it, for the logs) is optional: older messages have none,
 * and one that is not an id the service accepts (`acceptedRequestId`) is dropped, never a reason to refuse the event.
 */
export type OrderEvent = z.infer<typeof orderEventSchema>;

/**
 * Parses and validates a message body.
 *
 * @throws MalformedMessageError naming the message and every problem found
 */
export function parseOrderEvent(messageId: string, body: string): OrderEvent {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new MalformedMessageError(messageId, [`body is not JSON (${(err as Error).message})`], {
      cause: err,
    });
  }
  const result = z.safeParse(orderEventSchema, dropInvalidRequestId(json));
  if (!result.success) {
    throw new MalformedMessageError(
      messageId,
      result.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`),
    );
  }
  return result.data;
}
