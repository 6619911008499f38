import {
  IdempotencyAlreadyInProgressError,
  IdempotencyValidationError,
} from '@aws-lambda-powertools/idempotency';
import {
  DownstreamError,
  MalformedMessageError,
  UnprocessableRecordError,
  WorkerError,
  isTransient,
} from '../../../lambda/shared/errors';

describe('isTransient: the one place that decides whether a failure is worth retrying', () => {
  test.each([
    ['no answer', new DownstreamError('timeout'), true],
    ['503', new DownstreamError('x', 503), true],
    ['429', new DownstreamError('x', 429), true],
    ['408', new DownstreamError('x', 408), true],
    ['400', new DownstreamError('x', 400), false],
    ['404', new DownstreamError('x', 404), false],
    ['a malformed message', new MalformedMessageError('m-1', ['orderId: missing']), false],
    ['a record about an order that does not exist', new UnprocessableRecordError('order 1 not found'), false],
    ['a record still in progress', new IdempotencyAlreadyInProgressError('in progress'), true],
    ['an idempotency key reused with another payload', new IdempotencyValidationError('mismatch'), false],
    ['anything unforeseen (bounded by maxReceiveCount)', new Error('ECONNRESET'), true],
  ])('%s -> %s', (_case, err, transient) => {
    expect(isTransient(err)).toBe(transient);
  });

  test('every worker error is named by its class and keeps its cause', () => {
    const cause = new Error('socket hang up');
    const err = new DownstreamError('no answer', undefined, { cause });
    expect(err).toBeInstanceOf(WorkerError);
    expect(err.name).toBe('DownstreamError');
    expect(err.cause).toBe(cause);
    expect(new MalformedMessageError('m-1', ['a', 'b']).message).toBe('message m-1 is malformed: a; b');
  });
});
