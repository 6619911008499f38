/**
 * Named errors of the Lambda workers, under one base that keeps `cause` (as Powertools'
 * `IdempotencyUnknownError` family does). Whether a failure is worth retrying is decided
 * only by {@link isTransient}; every worker logs and counts through it.
 */

/** Base of every error a worker raises on purpose. */
export class WorkerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A message that can never be processed as it is: not JSON, or missing or malformed
 * fields. Retrying cannot help; it fails until the queue's maxReceiveCount moves it to
 * the dead-letter queue, where an operator reads it.
 */
export class MalformedMessageError extends WorkerError {
  constructor(
    readonly messageId: string,
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`message ${messageId} is malformed: ${problems.join('; ')}`, options);
  }
}

/**
 * A well-formed record that fails the same way on every attempt for what it refers to,
 * such as an order that does not exist. Like a malformed message, it fails until the
 * queue's maxReceiveCount moves it to the dead-letter queue, logged as permanent.
 */
export class UnprocessableRecordError extends WorkerError {}

/** A downstream call (HTTP endpoint) failed. `status` is absent when there was no answer. */
export class DownstreamError extends WorkerError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Powertools idempotency errors that no retry fixes: the same key with another payload,
 * or no key at all. Matched by name so that a worker without idempotency does not bundle
 * the package for this check.
 */
const PERMANENT_IDEMPOTENCY_ERRORS = new Set(['IdempotencyValidationError', 'IdempotencyKeyError']);

/**
 * Whether a failure may succeed on a later attempt: no answer, a timeout, 408, 429, 5xx,
 * an idempotency record still in progress, or anything unforeseen (retrying is bounded by
 * the queue's maxReceiveCount). A malformed message, an unprocessable record, a 4xx
 * rejection or an idempotency key reused with another payload fails the same way every time.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof MalformedMessageError || err instanceof UnprocessableRecordError) return false;
  if (err instanceof Error && PERMANENT_IDEMPOTENCY_ERRORS.has(err.name)) return false;
  if (err instanceof DownstreamError) {
    return err.status === undefined || err.status === 408 || err.status === 429 || err.status >= 500;
  }
  return true;
}
