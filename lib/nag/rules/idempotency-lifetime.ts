import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { SQS_MAX_RETENTION_SECONDS, deadLetterQueueOf, deadLetterTarget, retentionSeconds } from '../queues';
import { TemplateModel, TemplateResource, asObject } from '../template-model';

/** The variable a worker reads its idempotency record lifetime from (Powertools' `expiresAfterSeconds`). */
export const IDEMPOTENCY_EXPIRY_VARIABLE = 'IDEMPOTENCY_EXPIRES_AFTER_SECONDS';

/** The variable that names a worker's idempotency table: the function keeps idempotency records. */
export const IDEMPOTENCY_TABLE_VARIABLE = 'IDEMPOTENCY_TABLE_NAME';

/** Powertools' record lifetime when `expiresAfterSeconds` is not given: one hour. */
export const POWERTOOLS_DEFAULT_EXPIRY_SECONDS = 3_600;

/**
 * What the lifetime must exceed retention and redrive by, for a producer's late re-send:
 * `IDEMPOTENCY_MARGIN` of lib/constructs/resilient-queue.ts (one day), which
 * test/nag/rules/idempotency-lifetime.test.ts holds equal. Not imported: the constructs
 * import lib/compliance.ts, which registers this pack.
 */
export const LATE_RESEND_MARGIN_SECONDS = 86_400;

/**
 * The shortest idempotency record lifetime for a consumer of a queue, in seconds: the
 * project's definition, `ResilientQueue.idempotencyLifetime`. A copy of a message can wait
 * in the queue for its retention, then in the DLQ until the DLQ's retention runs out, and a
 * redrive makes it a new message; one day more covers a producer's late re-send.
 *
 * @param retentionSeconds the queue's `MessageRetentionPeriod`
 * @param deadLetterRetentionSeconds the DLQ's, or 0 when the queue has no redrive policy
 */
export function requiredLifetimeSeconds(
  retentionSeconds: number,
  deadLetterRetentionSeconds: number,
): number {
  return retentionSeconds + deadLetterRetentionSeconds + LATE_RESEND_MARGIN_SECONDS;
}

/** The queues of the template that an SQS event source mapping feeds to the function. */
function sourceQueues(model: TemplateModel, fn: TemplateResource): TemplateResource[] {
  return model
    .ofType('AWS::Lambda::EventSourceMapping')
    .filter((m) => model.target(m.properties.FunctionName)?.logicalId === fn.logicalId)
    .map((m) => model.target(m.properties.EventSourceArn, 'AWS::SQS::Queue'))
    .filter((q): q is TemplateResource => q !== undefined);
}

/** The lifetime a queue's consumer needs (unknown retentions count as SQS's 14-day maximum). */
function requiredFor(model: TemplateModel, queue: TemplateResource): number {
  const retention = retentionSeconds(queue) ?? SQS_MAX_RETENTION_SECONDS;
  if (deadLetterTarget(queue) === undefined) return requiredLifetimeSeconds(retention, 0);
  const dlq = deadLetterQueueOf(model, queue);
  const dlqRetention = (dlq && retentionSeconds(dlq)) ?? SQS_MAX_RETENTION_SECONDS;
  return requiredLifetimeSeconds(retention, dlqRetention);
}

/**
 * Idempotency records outlive every copy of the messages they guard.
 *
 * For every AWS::Lambda::Function that an AWS::Lambda::EventSourceMapping feeds from an SQS
 * queue of the template, and whose environment names an idempotency table
 * ({@link IDEMPOTENCY_TABLE_VARIABLE}) or record lifetime ({@link IDEMPOTENCY_EXPIRY_VARIABLE}),
 * the lifetime in seconds must be at least, per source queue,
 * `retention + DLQ retention + 1 day` ({@link requiredLifetimeSeconds}, the project's
 * `ResilientQueue.idempotencyLifetime`): the queue's `MessageRetentionPeriod` (SQS's 4 days
 * when unset), the retention of the DLQ its redrive policy names (0 without a redrive
 * policy; 14 days, SQS's maximum, when the DLQ is not in the template). Each finding names
 * the queue:
 *
 * - `[<queue>:expires-too-soon]`: the lifetime is shorter than that;
 * - `[<queue>:no-expiry]`: a table but no lifetime: Powertools keeps records one hour;
 * - `[<queue>:expiry-unreadable]`: the lifetime is not a whole number in the template.
 *
 * Why: SQS delivers at least once, and a message comes back long after it was first applied:
 * after a visibility timeout, after a consumer outage, and when an operator redrives the DLQ
 * days later. Once its record has expired, the copy is applied again (a second fulfilment, a
 * second charge attempt) with nothing to say it was a duplicate.
 *
 * AWS documentation: Amazon SQS Developer Guide, "Amazon SQS at-least-once delivery" and
 * "Setting-up dead-letter queue retention in Amazon SQS"; Powertools for AWS Lambda
 * (TypeScript), "Idempotency" (`expiresAfterSeconds`, default 3600).
 */
export function idempotencyLifetime(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::Lambda::Function') return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const fn = model.resourceOf(node);
  const variables = asObject(asObject(fn.properties.Environment).Variables);
  const expiry = variables[IDEMPOTENCY_EXPIRY_VARIABLE];
  if (expiry === undefined && variables[IDEMPOTENCY_TABLE_VARIABLE] === undefined) {
    return NagRuleCompliance.NOT_APPLICABLE;
  }
  const queues = sourceQueues(model, fn);
  if (queues.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  const seconds = typeof expiry === 'string' || typeof expiry === 'number' ? Number(expiry) : NaN;
  const findings = queues.flatMap((queue) => {
    if (expiry === undefined) return [`${queue.logicalId}:no-expiry`];
    if (!Number.isInteger(seconds)) return [`${queue.logicalId}:expiry-unreadable`];
    return seconds < requiredFor(model, queue) ? [`${queue.logicalId}:expires-too-soon`] : [];
  });
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
