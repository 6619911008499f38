import { TemplateModel, TemplateResource, asArray, asObject, flatString } from './template-model';

const QUEUE = 'AWS::SQS::Queue';

/** SQS's retention when `MessageRetentionPeriod` is not set: 4 days. */
export const SQS_DEFAULT_RETENTION_SECONDS = 345_600;

/** The longest retention SQS accepts: 14 days. */
export const SQS_MAX_RETENTION_SECONDS = 1_209_600;

/**
 * A JSON-valued property (`RedrivePolicy`, `RedriveAllowPolicy`) as an object: CDK writes
 * an object, a hand-written template may hold the JSON string.
 */
export function jsonProperty(value: unknown): Record<string, unknown> {
  if (typeof value !== 'string') return asObject(value);
  try {
    return asObject(JSON.parse(value));
  } catch {
    return {};
  }
}

/**
 * How long a queue keeps a message, in seconds: its `MessageRetentionPeriod`, SQS's 4 days
 * when unset, or undefined when the template does not say (a parameter, an import).
 */
export function retentionSeconds(queue: TemplateResource): number | undefined {
  const value = queue.properties.MessageRetentionPeriod;
  if (value === undefined) return SQS_DEFAULT_RETENTION_SECONDS;
  const seconds = typeof value === 'number' || typeof value === 'string' ? Number(value) : NaN;
  return Number.isInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** Whether a queue is FIFO (its `FifoQueue` is true). */
export function isFifo(queue: TemplateResource): boolean {
  const fifo = queue.properties.FifoQueue;
  return fifo === true || fifo === 'true';
}

/**
 * Whether a value (an ARN) names a queue of the template: `Fn::GetAtt [queue, Arn]`, `Ref`,
 * or a string ending in `:<QueueName>` when the queue's name is a literal.
 */
export function namesQueue(model: TemplateModel, value: unknown, queue: TemplateResource): boolean {
  if (value === undefined || value === null) return false;
  if (model.target(value, QUEUE)?.logicalId === queue.logicalId) return true;
  const name = queue.properties.QueueName;
  return typeof name === 'string' && flatString(value).endsWith(`:${name}`);
}

/** The `deadLetterTargetArn` of a queue's redrive policy, or undefined when it has none. */
export function deadLetterTarget(queue: TemplateResource): unknown {
  return jsonProperty(queue.properties.RedrivePolicy).deadLetterTargetArn;
}

/** The dead-letter queue of a queue, when its redrive policy names a queue of the template. */
export function deadLetterQueueOf(
  model: TemplateModel,
  queue: TemplateResource,
): TemplateResource | undefined {
  const target = deadLetterTarget(queue);
  if (target === undefined) return undefined;
  return model.ofType(QUEUE).find((q) => q !== queue && namesQueue(model, target, q));
}

/** Every place of the template that sends failed messages or events to a queue (its ARN). */
function deadLetterArns(model: TemplateModel): unknown[] {
  const arns: unknown[] = [];
  const onFailure = (p: Record<string, unknown>) =>
    asObject(asObject(p.DestinationConfig).OnFailure).Destination;
  for (const resource of model.resources.values()) {
    const p = resource.properties;
    switch (resource.type) {
      case QUEUE:
        arns.push(deadLetterTarget(resource));
        break;
      case 'AWS::SNS::Subscription':
        arns.push(jsonProperty(p.RedrivePolicy).deadLetterTargetArn);
        break;
      case 'AWS::Lambda::Function':
        arns.push(asObject(p.DeadLetterConfig).TargetArn);
        break;
      case 'AWS::Lambda::EventInvokeConfig':
      case 'AWS::Lambda::EventSourceMapping':
        arns.push(onFailure(p));
        break;
      case 'AWS::Events::Rule':
        arns.push(...asArray(p.Targets).map((t) => asObject(asObject(t).DeadLetterConfig).Arn));
        break;
      case 'AWS::Scheduler::Schedule':
        arns.push(asObject(asObject(p.Target).DeadLetterConfig).Arn);
        break;
      default:
        break;
    }
  }
  return arns.filter((a) => a !== undefined);
}

/**
 * Whether a queue is a dead-letter queue: a queue's redrive policy, an SNS subscription's
 * redrive policy, a function's asynchronous DLQ or on-failure destination, an event source
 * mapping's on-failure destination, or an EventBridge rule or schedule target's DLQ names
 * it; or its redrive-allow policy admits dead letters from named source queues only
 * (`byQueue`, which is how a DLQ of sources in another stack declares itself).
 */
export function isDeadLetterQueue(model: TemplateModel, queue: TemplateResource): boolean {
  if (jsonProperty(queue.properties.RedriveAllowPolicy).redrivePermission === 'byQueue') return true;
  return deadLetterArns(model).some((arn) => namesQueue(model, arn, queue));
}
