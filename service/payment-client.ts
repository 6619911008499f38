import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  IPolicy,
  TaskCancelledError,
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
  TransientPaymentError,
  paymentErrorForStatus,
} from './errors';

/** What the checkout needs to charge. */
export interface ChargeRequest {
  readonly orderId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly paymentToken: string;
}

/** How a charge ended, as far as the checkout cares. */
export type ChargeOutcome =
  | { readonly kind: 'charged'; readonly chargeId: string }
  | { readonly kind: 'declined'; readonly reason: string }
  | { readonly kind: 'deferred'; readonly cause: 'circuit-open' | 'retries-exhausted' | 'bulkhead-full' };

/** The gateway port; the checkout depends on this, tests may substitute it. */
export interface PaymentGateway {
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
  readonly breakerState: 'closed' | 'open' | 'half-open' | 'isolated';
}

/** Retried and counted by the breaker: transient gateway errors and attempt timeouts. */
const isTransient = (err: unknown): boolean =>
  err instanceof TransientPaymentError || err instanceof TaskCancelledError;

/**
 * The payment gateway client: each call goes through
 * bulkhead -> retry (transient only, full jitter) -> half-open gate -> circuit breaker ->
 * per-attempt timeout.
 *
 * The order matters (see RESILIENCE-NOTES): the retry sits outside the breaker but does
 * not handle BrokenCircuitError, so an open breaker fails fast instead of backing off;
 * declines and rejections are not transient, so they are neither retried nor counted.
 * The timeout is cooperative and its AbortSignal is handed to fetch, so a hung gateway
 * really is abandoned. The order id is the gateway's Idempotency-Key on every attempt,
 * so a retry after a lost response never charges twice.
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

  constructor(
    private readonly baseUrl: string,
    config: Pick<
      ServiceConfig,
      | 'PAYMENT_ATTEMPT_TIMEOUT_MS'
      | 'PAYMENT_RETRIES'
      | 'PAYMENT_BACKOFF_INITIAL_MS'
      | 'PAYMENT_BACKOFF_MAX_MS'
      | 'PAYMENT_BREAKER_THRESHOLD'
      | 'PAYMENT_BREAKER_HALF_OPEN_AFTER_MS'
      | 'PAYMENT_MAX_CONCURRENT'
      | 'PAYMENT_MAX_QUEUED'
    >,
  ) {
    const transient = handleWhen(isTransient);
    this.breaker = circuitBreaker(transient, {
      halfOpenAfter: config.PAYMENT_BREAKER_HALF_OPEN_AFTER_MS,
      breaker: new ConsecutiveBreaker(config.PAYMENT_BREAKER_THRESHOLD),
    });
    this.policy = wrap(
      bulkhead(config.PAYMENT_MAX_CONCURRENT, config.PAYMENT_MAX_QUEUED),
      retry(transient, {
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
      if (err instanceof PaymentDeclinedError) return { kind: 'declined', reason: err.reason };
      if (err instanceof PaymentRejectedError) return { kind: 'declined', reason: err.message };
      if (err instanceof BrokenCircuitError) return { kind: 'deferred', cause: 'circuit-open' };
      if (err instanceof BulkheadRejectedError) return { kind: 'deferred', cause: 'bulkhead-full' };
      if (isTransient(err)) return { kind: 'deferred', cause: 'retries-exhausted' };
      throw err;
    }
  }

  private async attempt(request: ChargeRequest, signal: AbortSignal): Promise<string> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/charges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': request.orderId },
        body: JSON.stringify(request),
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw new TaskCancelledError('payment attempt timed out');
      throw new TransientPaymentError(`payment gateway unreachable: ${(err as Error).message}`);
    }
    let body: { chargeId?: unknown; status?: unknown; reason?: unknown } = {};
    try {
      body = (await response.json()) as typeof body;
    } catch {
      if (signal.aborted) throw new TaskCancelledError('payment attempt timed out');
      if (response.ok) throw new TransientPaymentError('payment gateway sent an unreadable success body');
    }
    if (response.ok) {
      if (typeof body.chargeId !== 'string' || body.chargeId === '') {
        throw new TransientPaymentError('payment gateway success without a chargeId');
      }
      return body.chargeId;
    }
    throw paymentErrorForStatus(response.status, typeof body.reason === 'string' ? body.reason : '');
  }
}
