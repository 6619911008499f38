import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { Statement, appliesToService, coversAction, denyReaches, statementsOf } from '../policy';
import { TemplateModel, TemplateResource, asArray, asObject, flatString } from '../template-model';

/** Who publishes for a resource type, and which of its properties name topics. */
interface Publisher {
  readonly principal: string;
  readonly topicValues: (properties: Record<string, unknown>) => unknown[];
}

const ALARM: Publisher = {
  principal: 'cloudwatch.amazonaws.com',
  topicValues: (p) => [p.AlarmActions, p.OKActions, p.InsufficientDataActions].flatMap(asArray),
};

const PUBLISHERS: Record<string, Publisher> = {
  'AWS::CloudWatch::Alarm': ALARM,
  'AWS::CloudWatch::CompositeAlarm': ALARM,
  'AWS::Events::Rule': {
    principal: 'events.amazonaws.com',
    // A target with a RoleArn publishes as that role, not as the service principal.
    topicValues: (p) =>
      asArray(p.Targets)
        .map(asObject)
        .filter((t) => t.RoleArn === undefined)
        .map((t) => t.Arn),
  },
};

/** What the KMS key of an encrypted topic must let the publishing service do. */
const KEY_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey*'];

/** A Deny that only bites requests without TLS (or under another condition) never blocks a service. */
function unconditionalDenies(statements: Statement[]): Statement[] {
  return statements.filter((s) => s.effect === 'Deny' && s.condition === undefined);
}

function coversTopic(
  model: TemplateModel,
  resources: unknown[] | undefined,
  topic: TemplateResource,
): boolean {
  return asArray(resources).some((r) => {
    if (model.target(r)?.logicalId === topic.logicalId) return true;
    const literal = typeof r === 'string' ? r : undefined;
    // `*`, or an ARN pattern whose topic name is `*` (arn:aws:sns:region:account:*).
    return literal === '*' || (literal !== undefined && /^arn:[^:]*:(sns|\*):[^:]*:[^:]*:\*$/.test(literal));
  });
}

/** Whether the topic policies let the service publish to the topic. */
function topicPolicyAllows(model: TemplateModel, topic: TemplateResource, principal: string): boolean {
  const statements = model
    .ofType('AWS::SNS::TopicPolicy')
    .filter((p) => model.targets(p.properties.Topics, 'AWS::SNS::Topic').some((t) => t === topic))
    .flatMap((p) => statementsOf(p.properties.PolicyDocument));
  // No topic policy: SNS keeps its default policy, which lets the owner account's services publish.
  if (statements.length === 0) return true;
  const reaches = (s: Statement) => appliesToService(s, principal) && coversTopic(model, s.resources, topic);
  const allowed = statements.some(
    (s) => s.effect === 'Allow' && reaches(s) && coversAction(s, 'sns:Publish'),
  );
  const denied = unconditionalDenies(statements).some((s) => reaches(s) && denyReaches(s, 'sns:Publish'));
  return allowed && !denied;
}

/** Whether a key policy lets the service encrypt messages for the topic. */
function keyPolicyAllows(key: TemplateResource, principal: string): boolean {
  const statements = statementsOf(key.properties.KeyPolicy);
  // A key policy applies to its own key only, so its Resource (always `*`) is not compared.
  return KEY_ACTIONS.every(
    (action) =>
      statements.some(
        (s) => s.effect === 'Allow' && appliesToService(s, principal) && coversAction(s, action),
      ) &&
      !unconditionalDenies(statements).some((s) => appliesToService(s, principal) && denyReaches(s, action)),
  );
}

/** The problems that stop a service from publishing to one topic. */
function publishProblems(model: TemplateModel, topic: TemplateResource, principal: string): string[] {
  const problems: string[] = [];
  if (!topicPolicyAllows(model, topic, principal)) problems.push('topic-policy');
  const keyRef = topic.properties.KmsMasterKeyId;
  if (keyRef !== undefined && /alias\/aws\/sns$/.test(flatString(keyRef))) {
    problems.push('aws-managed-key');
  } else if (keyRef !== undefined) {
    const alias = model.target(keyRef, 'AWS::KMS::Alias');
    const key = model.target(alias ? alias.properties.TargetKeyId : keyRef, 'AWS::KMS::Key');
    if (key && !keyPolicyAllows(key, principal)) problems.push(`key-policy:${key.logicalId}`);
  }
  return problems.map((p) => `${topic.logicalId}:${p}`);
}

/**
 * Alarm and event targets can publish to their topic.
 *
 * For every CloudWatch alarm or composite alarm (`AlarmActions`, `OKActions`,
 * `InsufficientDataActions`) and every EventBridge rule target without a `RoleArn` that
 * refers to an SNS topic of the same template, proves that the publishing service principal
 * (`cloudwatch.amazonaws.com`, `events.amazonaws.com`) may publish:
 *
 * - when an AWS::SNS::TopicPolicy lists the topic, one of its statements must Allow that
 *   principal `sns:Publish` on the topic (or `*`), and no Deny without a Condition may cover
 *   it. A topic policy replaces SNS's default policy: a policy holding only the usual
 *   "deny publishing without TLS" statement lets nothing publish at all;
 * - when the topic is encrypted with a key of the template, the key policy must Allow that
 *   principal `kms:Decrypt` and `kms:GenerateDataKey*`; the AWS managed key `alias/aws/sns`
 *   can never be used, since its policy cannot be changed.
 *
 * Each finding names the topic and what is missing:
 * `[<topic>:topic-policy]`, `[<topic>:key-policy:<key>]` or `[<topic>:aws-managed-key]`.
 *
 * Why: both failures are silent. The alarm changes state and the rule matches, but the
 * notification is dropped (`FailedInvocations` on the rule, "Failed to execute action" in the
 * alarm history) and nobody is paged.
 *
 * AWS documentation: Amazon SNS Developer Guide, "Enable compatibility between event sources
 * from AWS services and encrypted topics"; Amazon EventBridge User Guide, "Using
 * resource-based policies for Amazon EventBridge" (Amazon SNS permissions).
 */
export function topicPublish(node: CfnResource): NagRuleResult {
  const publisher = PUBLISHERS[node.cfnResourceType];
  if (!publisher) return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const self = model.resourceOf(node);
  const topics = model.targets(publisher.topicValues(self.properties), 'AWS::SNS::Topic');
  if (topics.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  const findings = topics.flatMap((topic) => publishProblems(model, topic, publisher.principal));
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
