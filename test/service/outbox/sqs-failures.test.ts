import {
  BatchRequestTooLong,
  InvalidMessageContents,
  KmsThrottled,
  QueueDoesNotExist,
  RequestThrottled,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { classifyEntryFailure, classifySendError } from '../../../service/outbox/sqs-failures';

const metadata = { $metadata: {} };
const generic = (name: string, fault: 'client' | 'server') =>
  new SQSServiceException({ name, $fault: fault, message: `${name} happened`, ...metadata });

describe('classifySendError (a whole SendMessageBatch call failed)', () => {
  test.each([
    ['a body SQS refuses', new InvalidMessageContents({ message: 'Invalid characters found', ...metadata })],
    ['a batch over the size limit', new BatchRequestTooLong({ message: 'too long', ...metadata })],
    ['a message over the queue\u2019s MaximumMessageSize', generic('InvalidParameterValue', 'client')],
  ])('%s is the message\u2019s fault: park it', (_, err) => {
    expect(classifySendError(err).kind).toBe('message');
  });

  test.each([
    [
      'a queue that does not exist',
      new QueueDoesNotExist({ message: 'The specified queue does not exist.', ...metadata }),
    ],
    ['a send we may not make', generic('AccessDenied', 'client')],
    ['an unusable KMS key', generic('KmsDisabled', 'client')],
  ])('%s is the destination\u2019s fault: keep the rows, back off', (_, err) => {
    expect(classifySendError(err).kind).toBe('destination');
  });

  test.each([
    ['throttling', new RequestThrottled({ message: 'slow down', ...metadata })],
    ['KMS throttling', new KmsThrottled({ message: 'slow down', ...metadata })],
    ['a 5xx', generic('InternalError', 'server')],
    ['a timeout', Object.assign(new Error('Request aborted'), { name: 'AbortError' })],
    [
      'a network error',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
    ],
    ['an error it does not know', generic('SomethingNew', 'client')],
  ])('%s is transient: retried, never parked', (_, err) => {
    expect(classifySendError(err).kind).toBe('transient');
  });

  test('the reason names the code and keeps SQS\u2019s message', () => {
    expect(
      classifySendError(
        new QueueDoesNotExist({ message: 'The specified queue does not exist.', ...metadata }),
      ).reason,
    ).toBe('QueueDoesNotExist: The specified queue does not exist.');
  });
});

describe('classifyEntryFailure (one entry of a batch failed)', () => {
  test('SenderFault: the entry itself is wrong, park it with SQS\u2019s reason', () => {
    expect(
      classifyEntryFailure({
        Id: '1',
        SenderFault: true,
        Code: 'InvalidMessageContents',
        Message: 'Invalid characters',
      }),
    ).toEqual({ kind: 'message', reason: 'InvalidMessageContents: Invalid characters' });
  });

  test('no SenderFault: SQS failed, retry it', () => {
    expect(classifyEntryFailure({ Id: '1', SenderFault: false, Code: 'InternalError' }).kind).toBe(
      'transient',
    );
  });
});
