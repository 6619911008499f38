import { randomUUID } from 'node:crypto';
import { ControllableServer, json } from './controllable-server';

/** One charge the fake took, with how many requests asked for it. */
export interface RecordedCharge {
  readonly chargeId: string;
  readonly amountCents: number;
  requests: number;
}

/**
 * A Stripe-like payment gateway: `POST /charges` with an `Idempotency-Key` header takes
 * a charge once per key and answers every repeat with the same charge. `GET /__charges`
 * lists them. Besides the shared faults, `failAfterChargeRate` takes the charge and then
 * answers 500 - the lost-response case that retries must not turn into a double charge.
 *
 * With an `apiKey`, a charge must carry `Authorization: Bearer <apiKey>`, as a real
 * gateway's would; any other or none is answered 401 and takes no charge. Changing
 * `apiKey` while it runs is a key rotation at the gateway.
 */
export class FakePaymentGateway extends ControllableServer {
  readonly charges = new Map<string, RecordedCharge>();
  failAfterChargeRate = 0;
  /**
   * When non-zero, every charge is answered with this status (401, 403, 400...) and no
   * charge is taken: the gateway refusing our request, as with a revoked API key.
   */
  rejectStatus = 0;
  /** Charge requests answered with `rejectStatus`. */
  rejectedRequests = 0;
  /** The API key a charge must carry, if any (see the class comment). */
  apiKey: string | undefined;
  /** Charge requests answered 401 for a missing or wrong API key. */
  unauthorizedRequests = 0;
  /** The `Authorization` header of the last charge request (undefined: none). */
  lastAuthorization: string | undefined;

  constructor(options: { apiKey?: string } = {}) {
    super((req, body, res) => {
      if (req.method === 'GET' && req.url === '/__charges') {
        return json(res, 200, Object.fromEntries(this.charges));
      }
      if (req.method !== 'POST' || req.url !== '/charges') return json(res, 404, { error: 'not found' });
      this.lastAuthorization = req.headers.authorization;
      if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
        this.unauthorizedRequests++;
        return json(res, 401, { error: 'invalid_request_error', message: 'Invalid API Key provided' });
      }
      const key = req.headers['idempotency-key'];
      if (typeof key !== 'string' || key === '') return json(res, 400, { error: 'Idempotency-Key required' });
      let request: { amountCents?: unknown; paymentToken?: unknown };
      try {
        request = JSON.parse(body) as typeof request;
      } catch {
        return json(res, 400, { error: 'body must be JSON' });
      }
      if (this.rejectStatus !== 0) {
        this.rejectedRequests++;
        return json(res, this.rejectStatus, { error: 'invalid_request_error', message: 'Invalid API Key' });
      }
      if (this.settings.mode === 'decline' || request.paymentToken === 'tok_decline') {
        return json(res, 402, { status: 'declined', reason: 'card_declined' });
      }
      let charge = this.charges.get(key);
      if (!charge) {
        charge = { chargeId: `ch_${randomUUID()}`, amountCents: Number(request.amountCents), requests: 0 };
        this.charges.set(key, charge);
      }
      charge.requests++;
      if (this.failAfterChargeRate > 0 && Math.random() < this.failAfterChargeRate) {
        return json(res, 500, { error: 'injected failure after the charge was taken' });
      }
      json(res, 201, { chargeId: charge.chargeId, status: 'succeeded' });
    });
    this.apiKey = options.apiKey;
  }
}
