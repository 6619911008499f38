import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  IPolicy,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  fullJitterGenerator,
  handleWhen,
  retry,
  timeout,
  wrap,
  CircuitBreakerPolicy,
} from 'cockatiel';
import { ServiceConfig } from './config';
import {
  PaymentDeclinedError,
  PaymentRejectedError,
  PaymentTimeoutError,
  TransientPaymentError,
  classifyPaymentFailure,
  opensPaymentBreaker,
  paymentErrorForStatus,
  shouldRetryPayment,
} from './errors';
import { OutboundHttpClient, OutboundRequestError, OutboundResponse } from './http/outbound';
import { PaymentApiKeySource, staticApiKey } from './payment-api-key';

/** What the checkout needs to charge. */
export interface ChargeRequest {
  readonly orderId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly paymentToken: string;
}

/** Why a charge was not attempted, or not finished: the order goes to the payment-retry queue. */
export type DeferralCause = 'circuit-open' | 'retries-exhausted' | 'bulkhead-full';

/** How a charge ended, as far as the checkout cares. */
export type ChargeOutcome =
  | { readonly kind: 'charged'; readonly chargeId: string }
  | { readonly kind: 'declined'; readonly reason: string }
  | { readonly kind: 'deferred'; readonly cause: DeferralCause }
  /** The gateway refused the request itself (a misconfiguration): not the customer's doing. */
  | { readonly kind: 'rejected'; readonly error: PaymentRejectedError };

/** The client's policy: the service's PAYMENT_* settings (timeout, retries, breaker, bulkhead). */
export type PaymentPolicy = Pick<
  ServiceConfig,
  | 'PAYMENT_ATTEMPT_TIMEOUT_MS'
  | 'PAYMENT_RETRIES'
  | 'PAYMENT_BACKOFF_INITIAL_MS'
  | 'PAYMENT_BACKOFF_MAX_MS'
  | 'PAYMENT_BREAKER_THRESHOLD'
  | 'PAYMENT_BREAKER_HALF_OPEN_AFTER_MS'
  | 'PAYMENT_MAX_CONCURRENT'
  | 'PAYMENT_MAX_QUEUED'
>;

/** The client's policy and its credentials. */
export type PaymentClientOptions = PaymentPolicy & {
  /**
   * The gateway's API key, sent as `Authorization: Bearer <key>` on every call: the key
   * itself, or a source that reads it (and reads it again on a 401 or 403,
   * service/payment-api-key.ts).
   *
   * @default - no Authorization header: only the bundled fake gateway takes that
   */
  readonly apiKey?: string | PaymentApiKeySource;
};

/** The statuses that mean "this API key is not (or no longer) accepted". */
const KEY_REFUSED = new Set([401, 403]);

/** The gateway port; the checkout depends on this, tests may substitute it. */
export interface PaymentGateway {
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
  readonly breakerState: 'closed' | 'open' | 'half-open' | 'isolated';
}

/**
 * The payment gateway client: each call goes through
 * bulkhead -> retry (transient only, full jitter) -> half-open gate -> circuit breaker ->
 * per-attempt timeout.
 *
 * The order matters (see RESILIENCE-NOTES): the retry sits outside the breaker but does
 * not handle BrokenCircuitError, so an open breaker fails fast instead of backing off;
 * what is retried and what the breaker counts is decided in errors.ts
 * (`PAYMENT_FAILURE_HANDLING`): transient errors are both, declines neither, and
 * rejections (the gateway refusing our request: a misconfiguration) are not retried but
 * do open the breaker, so that a bad API key defers orders instead of hammering.
 * The timeout is cooperative and its AbortSignal is handed to the HTTP request (and the
 * reading of its response), so a hung gateway really is abandoned. The order id is the gateway's Idempotency-Key on every attempt,
 * so a retry after a lost response never charges twice.
 *
 * The API key: every request carries `Authorization: Bearer <key>`. When the gateway
 * answers 401 or 403, the key source reads the key again (a rotation may have replaced
 * it) and, if it got another one, the same request (same Idempotency-Key) is sent once
 * more within the same attempt; only a refusal of the key just read counts as a
 * rejection (the misconfiguration path: not retried, opens the breaker).
 *
 * The half-open gate: while cockatiel's breaker runs its half-open trial, it makes every
 * other caller wait for the trial's outcome (up to a whole attempt timeout) and then
 * re-run. For a checkout that is the hang the breaker exists to avoid (measured: p99 of
 * 2 s with a hung gateway and the breaker open), so callers other than the trial are
 * deferred at once, exactly as while the breaker is open.
 */
export class HttpPaymentGateway implements PaymentGateway {
  private readonly breaker: CircuitBreakerPolicy;
  /** Bulkhead and retry, around each attempt. */
  private readonly policy: IPolicy;
  /** Breaker and per-attempt timeout, around one attempt. */
  private readonly attemptPolicy: IPolicy;
  /** Kept-alive connections to the gateway, at most one per bulkhead slot. */
  private readonly http: OutboundHttpClient;
  /** Where the API key comes from (undefined: none is sent). */
  private readonly apiKey?: PaymentApiKeySource;

  constructor(baseUrl: string, config: PaymentClientOptions) {
    this.http = new OutboundHttpClient(baseUrl, config.PAYMENT_MAX_CONCURRENT);
    this.apiKey = typeof config.apiKey === 'string' ? staticApiKey(config.apiKey) : config.apiKey;
    // Which errors are retried and which open the breaker: decided in errors.ts only.
    this.breaker = circuitBreaker(handleWhen(opensPaymentBreaker), {
      halfOpenAfter: config.PAYMENT_BREAKER_HALF_OPEN_AFTER_MS,
      breaker: new ConsecutiveBreaker(config.PAYMENT_BREAKER_THRESHOLD),
    });
    this.policy = wrap(
      bulkhead(config.PAYMENT_MAX_CONCURRENT, config.PAYMENT_MAX_QUEUED),
      retry(handleWhen(shouldRetryPayment), {
        maxAttempts: config.PAYMENT_RETRIES,
        backoff: new ExponentialBackoff({
          initialDelay: config.PAYMENT_BACKOFF_INITIAL_MS,
          maxDelay: config.PAYMENT_BACKOFF_MAX_MS,
          generator: fullJitterGenerator,
        }),
      }),
    );
    this.attemptPolicy = wrap(
      this.breaker,
      timeout(config.PAYMENT_ATTEMPT_TIMEOUT_MS, {
        strategy: TimeoutStrategy.Cooperative,
        abortOnReturn: false,
      }),
    );
  }

  get breakerState(): PaymentGateway['breakerState'] {
    switch (this.breaker.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.Open:
        return 'open';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'isolated';
    }
  }

  /** Subscribes to breaker state changes (for metrics and logs). */
  onBreakerStateChange(listener: (state: PaymentGateway['breakerState']) => void): void {
    this.breaker.onStateChange(() => listener(this.breakerState));
  }

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    try {
      const chargeId = await this.policy.execute(({ signal }) => {
        // The half-open gate (see the class comment): not retried, since the retry
        // handles transient errors only.
        if (this.breaker.state === CircuitState.HalfOpen) throw new BrokenCircuitError();
        return this.attemptPolicy.execute(
          ({ signal: attemptSignal }) => this.attempt(request, attemptSignal),
          signal,
        );
      });
      return { kind: 'charged', chargeId };
    } catch (err) {
      switch (classifyPaymentFailure(err)) {
        case 'declined':
          return { kind: 'declined', reason: (err as PaymentDeclinedError).reason };
        case 'rejected':
          return { kind: 'rejected', error: err as PaymentRejectedError };
        case 'circuit-open':
          return { kind: 'deferred', cause: 'circuit-open' };
        case 'bulkhead-full':
          return { kind: 'deferred', cause: 'bulkhead-full' };
        case 'transient':
          return { kind: 'deferred', cause: 'retries-exhausted' };
        case 'unexpected':
          throw err;
      }
    }
  }

  /** Closes the kept-alive connections to the gateway. */
  close(): void {
    this.http.close();
  }

  /**
   * One attempt: the charge with the current key and, when the gateway refuses that key
   * (401/403) and the key source has another one, once more with it.
   */
  private async attempt(request: ChargeRequest, signal: AbortSignal): Promise<string> {
    const keys = this.apiKey;
    const key = keys ? await keys.current() : undefined;
    let response = await this.send(request, signal, key);
    if (keys && key !== undefined && KEY_REFUSED.has(response.status)) {
      const next = await keys.refreshAfterRejection(key);
      if (signal.aborted) throw new PaymentTimeoutError('payment attempt timed out');
      if (next !== undefined) response = await this.send(request, signal, next);
    }
    return this.chargeIdOf(response);
  }

  /** Sends the charge request; an error status is a response, no answer is an error. */
  private async send(
    request: ChargeRequest,
    signal: AbortSignal,
    key: string | undefined,
  ): Promise<OutboundResponse> {
    try {
      return await this.http.request({
        method: 'POST',
        path: '/charges',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': request.orderId,
          ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
        },
        body: JSON.stringify(request),
        signal,
      });
    } catch (err) {
      if (signal.aborted || (err as OutboundRequestError).aborted)
        throw new PaymentTimeoutError('payment attempt timed out', undefined, { cause: err });
      const status = (err as OutboundRequestError).status;
      if (status === undefined) {
        throw new TransientPaymentError(`payment gateway unreachable: ${(err as Error).message}`, undefined, {
          cause: err,
        });
      }
      // The status arrived, the body did not: an error status still says what happened.
      return { status, ok: status >= 200 && status < 300, body: '' };
    }
  }

  /** The charge id of a success; the payment error its status means otherwise. */
  private chargeIdOf(response: OutboundResponse): string {
    let body: { chargeId?: unknown; reason?: unknown; message?: unknown; error?: unknown } = {};
    try {
      body = (JSON.parse(response.body) as typeof body | null) ?? {};
    } catch (err) {
      if (response.ok) {
        throw new TransientPaymentError('payment gateway sent an unreadable success body', response.status, {
          cause: err,
        });
      }
    }
    if (response.ok) {
      if (typeof body.chargeId !== 'string' || body.chargeId === '') {
        throw new TransientPaymentError('payment gateway success without a chargeId', response.status);
      }
      return body.chargeId;
    }
    throw paymentErrorForStatus(response.status, gatewayDetail(body));
  }
}

/** What the gateway said about a refusal: Stripe-like `reason`, `message` or `error`. */
function gatewayDetail(body: { reason?: unknown; message?: unknown; error?: unknown }): string {
  for (const value of [body.reason, body.message, body.error]) {
    if (typeof value === 'string' && value !== '') return value.slice(0, 200);
  }
  return '';
}
