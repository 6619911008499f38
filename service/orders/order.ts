import { createHash } from 'node:crypto';

/** One line of a checkout request, as the customer sent it. */
export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
}

/** A validated checkout request body. */
export interface CheckoutRequest {
  readonly customerId: string;
  readonly items: readonly OrderLine[];
  readonly paymentToken: string;
}

/**
 * Most units of one SKU in one order. The HTTP schema caps each line at this; lines of
 * the same SKU are merged and the sum is held to the same cap (see {@link mergeLines}).
 */
export const MAX_UNITS_PER_SKU = 100;

/** What is reserved: one entry per SKU, in SKU order (the order every statement locks inventory in). */
export interface Cart {
  readonly skus: readonly string[];
  readonly quantities: readonly number[];
}

/**
 * Merges lines of the same SKU into one, in SKU order.
 *
 * Duplicate SKUs are accepted (a client that adds an item twice is not wrong) but their
 * sum is held to {@link MAX_UNITS_PER_SKU}, the same cap as one line: without it, 50
 * lines of 100 became one line of 5,000.
 *
 * @returns the cart, or the message of a 400 naming the SKU over the cap
 */
export function mergeLines(items: readonly OrderLine[]): Cart | { readonly invalid: string } {
  let sorted = true;
  for (let i = 1; i < items.length; i++) {
    if (items[i - 1].sku >= items[i].sku) sorted = false;
  }
  if (sorted) {
    // The common case (distinct SKUs, already in order): no map, no sort.
    return { skus: items.map((i) => i.sku), quantities: items.map((i) => i.quantity) };
  }
  const merged = new Map<string, number>();
  for (const item of items) merged.set(item.sku, (merged.get(item.sku) ?? 0) + item.quantity);
  const skus = [...merged.keys()].sort();
  const quantities: number[] = [];
  for (const sku of skus) {
    const quantity = merged.get(sku)!;
    if (quantity > MAX_UNITS_PER_SKU) {
      return {
        invalid: `items: SKU ${sku} adds up to ${quantity} units over its lines; at most ${MAX_UNITS_PER_SKU} per SKU`,
      };
    }
    quantities.push(quantity);
  }
  return { skus, quantities };
}

/**
 * Hash of the body as the client meant it: key order does not matter, item order does.
 * Unchanged since the first release: keys stored by an older instance must still match.
 */
export function requestHash(request: CheckoutRequest): string {
  const canonical = JSON.stringify({
    customerId: request.customerId,
    items: request.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
    paymentToken: request.paymentToken,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * An order on its way through the checkout, from its claim to its recorded outcome:
 * the one object the steps pass along.
 */
export interface Order {
  readonly id: string;
  /** The Idempotency-Key it was created under. */
  readonly key: string;
  /** Hash of the request body stored with the key (a different body under the key is a 422). */
  readonly requestHash: string;
  /**
   * The lease this request holds on the key: recording the outcome requires it, so a
   * request that lost its lease to a retry records nothing.
   */
  readonly leaseToken: string;
  readonly customerId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly paymentToken: string;
  /** As the customer sent them (the OrderConfirmed event carries them). */
  readonly items: readonly OrderLine[];
  /**
   * The id of the request that records its outcome, for tracing: the outbox message
   * carries it (`requestId`), so the workers' log lines about the order name the request.
   * Absent where no request is involved (the payment-retry worker, the sweep).
   */
  readonly requestId?: string;
}
