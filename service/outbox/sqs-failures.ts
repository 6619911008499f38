import { BatchResultErrorEntry } from '@aws-sdk/client-sqs';

/**
 * Why a send to SQS failed, as the outbox relay acts on it. Decided here only.
 *
 * - `message`: SQS refuses the message itself (its contents or size). Sending it again
 *   can never succeed, so it is parked (`parked_at`, `park_reason`) and counted
 *   (`OutboxMessagesParked`) for an operator, and the rest of the destination flows on.
 * - `destination`: the queue cannot be used at all (it does not exist, we may not send
 *   to it, its KMS key is unusable, the credentials are refused). Every message to it
 *   would fail the same way, and every one becomes deliverable once the configuration is
 *   fixed, so nothing is parked: parking would turn a configuration fix into a manual
 *   replay of every deferred payment. That destination backs off (the other is not
 *   delayed), its rows wait, and the age of the oldest pending row is the alarm.
 * - `transient`: throttling, 5xx, network errors, timeouts; and any error not recognised
 *   as one of the above (parking on a guess would drop a message until an operator acts,
 *   where retrying costs only a backoff). Backs off, rows stay pending.
 */
export type SendFailureKind = 'message' | 'destination' | 'transient';

export interface SendFailure {
  readonly kind: SendFailureKind;
  /** `Code: message`, stored as the park reason and logged. */
  readonly reason: string;
}

/**
 * Errors of a whole SendMessageBatch call that are caused by what the batch carries.
 * With more than one message the relay cannot tell which one, so it sends them one by one.
 */
const MESSAGE_ERRORS = new Set([
  'InvalidMessageContents',
  'BatchRequestTooLong',
  // What SQS answers for a message over the queue's MaximumMessageSize.
  'InvalidParameterValue',
  'InvalidBatchEntryId',
  'BatchEntryIdsNotDistinct',
  'TooManyEntriesInBatchRequest',
  'EmptyBatchRequest',
]);

const DESTINATION_ERRORS = new Set([
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'InvalidAddress',
  'InvalidSecurity',
  'AccessDenied',
  'AccessDeniedException',
  'UnsupportedOperation',
  'KmsAccessDenied',
  'KmsDisabled',
  'KmsInvalidKeyUsage',
  'KmsInvalidState',
  'KmsNotFound',
  'KmsOptInRequired',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
]);

/** Classifies an error thrown by `SQSClient.send` for a whole batch. */
export function classifySendError(err: unknown): SendFailure {
  const e = (err ?? {}) as { name?: string; Code?: string; message?: string; $fault?: string };
  const code = e.name ?? 'Error';
  const reason = `${code}: ${e.message ?? String(err)}`;
  const codes = [e.name, e.Code].filter((c): c is string => typeof c === 'string');
  if (e.$fault === 'client' && codes.some((c) => MESSAGE_ERRORS.has(c))) return { kind: 'message', reason };
  if (e.$fault === 'client' && codes.some((c) => DESTINATION_ERRORS.has(c)))
    return { kind: 'destination', reason };
  return { kind: 'transient', reason };
}

/**
 * Classifies one failed entry of a SendMessageBatch answer: SQS sets `SenderFault` when
 * the entry itself is wrong (for instance `InvalidMessageContents`), so resending it
 * cannot help; otherwise the failure was SQS's and the entry is retried.
 */
export function classifyEntryFailure(entry: BatchResultErrorEntry): SendFailure {
  const reason = `${entry.Code ?? 'Error'}: ${entry.Message ?? 'no message'}`;
  return entry.SenderFault ? { kind: 'message', reason } : { kind: 'transient', reason };
}
