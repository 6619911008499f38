import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { deadLetterQueueOf, deadLetterTarget, isDeadLetterQueue, isFifo, retentionSeconds } from '../queues';
import { TemplateModel } from '../template-model';

/**
 * Every SQS queue that is not itself a dead-letter queue has a redrive policy to one, and
 * that DLQ keeps a message longer than the queue does.
 *
 * For every AWS::SQS::Queue that nothing in the template uses as a dead-letter queue (see
 * {@link isDeadLetterQueue}: another queue's or an SNS subscription's redrive policy, a
 * function's asynchronous DLQ or on-failure destination, an event source mapping's
 * on-failure destination, an EventBridge rule or schedule target's DLQ, or a `byQueue`
 * redrive-allow policy), reports:
 *
 * - `[no-redrive-policy]`: the queue has no `RedrivePolicy` with a `deadLetterTargetArn`;
 * - `[<dlq logical id>:dlq-retention]`: a standard queue's DLQ (in the template) keeps
 *   messages no longer than the queue itself.
 *
 * Why: without a redrive policy a message that always fails (a poison message) is received
 * again and again until its retention runs out, blocking a FIFO group or burning consumer
 * capacity, and then vanishes without trace. A standard queue's DLQ keeps each message's
 * original enqueue time, so a DLQ whose retention is not longer than the queue's deletes a
 * late dead letter on arrival, before anyone can look at it.
 *
 * AWS documentation: Amazon SQS Developer Guide, "Using dead-letter queues in Amazon SQS"
 * and "Setting-up dead-letter queue retention in Amazon SQS" ("For standard queues, the
 * expiration of a message is always based on its original enqueue timestamp ... set the
 * retention period of a dead-letter queue to be longer than the retention period of the
 * original queue").
 */
export function queueRedrive(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::SQS::Queue') return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const queue = model.resourceOf(node);
  if (isDeadLetterQueue(model, queue)) return NagRuleCompliance.NOT_APPLICABLE;
  if (deadLetterTarget(queue) === undefined) return ['no-redrive-policy'];
  const dlq = deadLetterQueueOf(model, queue);
  if (dlq && !isFifo(queue)) {
    const kept = retentionSeconds(queue);
    const dlqKept = retentionSeconds(dlq);
    if (kept !== undefined && dlqKept !== undefined && dlqKept <= kept) {
      return [`${dlq.logicalId}:dlq-retention`];
    }
  }
  return NagRuleCompliance.COMPLIANT;
}
