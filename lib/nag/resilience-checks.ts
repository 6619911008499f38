import { NagPackProps } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { alarmActionRunbook } from './rules/alarm-action-runbook';
import { asgHealthCheck } from './rules/asg-health-check';
import { failoverHealthCheck } from './rules/failover-health-check';
import { fisStopCondition } from './rules/fis-stop-condition';
import { idempotencyLifetime } from './rules/idempotency-lifetime';
import { lambdaLimits } from './rules/lambda-limits';
import { launchTemplateImdsv2 } from './rules/launch-template-imdsv2';
import { queueRedrive } from './rules/queue-redrive';
import { TemplateRulesPack } from './template-pack';

/** The pack's name: rule ids are `ResilientShopResilience-<Rule>[<finding>]`. */
export const RESILIENCE_PACK = 'ResilientShopResilience';

/** The ids of the pack's rules (without the `[<finding>]` suffix some findings add). */
export const RESILIENCE_RULES = {
  queueRedrive: `${RESILIENCE_PACK}-QueueRedrive`,
  asgHealthCheck: `${RESILIENCE_PACK}-AsgHealthCheck`,
  launchTemplateImdsv2: `${RESILIENCE_PACK}-LaunchTemplateImdsv2`,
  alarmActionRunbook: `${RESILIENCE_PACK}-AlarmActionRunbook`,
  fisStopCondition: `${RESILIENCE_PACK}-FisStopCondition`,
  lambdaLimits: `${RESILIENCE_PACK}-LambdaLimits`,
  failoverHealthCheck: `${RESILIENCE_PACK}-FailoverHealthCheck`,
  idempotencyLifetime: `${RESILIENCE_PACK}-IdempotencyLifetime`,
} as const;

/**
 * Checks the synthesized templates for the failure handling a production deployment needs:
 * poison messages reach a dead-letter queue, fleets replace instances their load balancer
 * finds unhealthy in more than one zone, instances require IMDSv2, every alarm pages
 * someone and links its runbook, chaos experiments stop on an alarm, every function has a
 * timeout and a concurrency bulkhead, DNS failover records have a health signal, and
 * idempotency records outlive the messages they guard.
 *
 * A separate pack from `WiringChecks` (which proves that interactions are allowed):
 * these rules are about what happens when something fails, a user can register one pack
 * without the other, and a finding's id says which concern it belongs to.
 *
 * Rules with one way to fail report the bare id (`ResilientShopResilience-FisStopCondition`);
 * rules with several carry the failure in brackets
 * (`ResilientShopResilience-LambdaLimits[no-reserved-concurrency]`). Acknowledge that
 * exact id, with `Validations.of(construct).acknowledge({ id, reason })` (or
 * `acknowledge()` of lib/compliance.ts), on the resource the finding names.
 *
 * Register with `Validations.of(app).addPlugins(new ResilienceChecks(app))`.
 */
export class ResilienceChecks extends TemplateRulesPack {
  public readonly name = RESILIENCE_PACK;

  constructor(scope?: IConstruct, props?: NagPackProps) {
    super(
      RESILIENCE_PACK,
      [
        {
          suffix: 'QueueRedrive',
          info: 'This SQS queue is not a dead-letter queue and has no redrive policy, or its dead-letter queue keeps messages no longer than it does.',
          explanation:
            'Without a redrive policy a poison message is received again and again until it expires unseen; a standard queue keeps the original enqueue time in its DLQ, so a DLQ with a retention no longer than the queue deletes late dead letters on arrival.',
          rule: queueRedrive,
        },
        {
          suffix: 'AsgHealthCheck',
          info: 'This Auto Scaling group does not use ELB health checks from a load balancer, or does not span at least two Availability Zones.',
          explanation:
            'With EC2 health checks an instance whose service hung stays in service and is never replaced; a group in one zone loses all its instances with that zone.',
          rule: asgHealthCheck,
        },
        {
          suffix: 'LaunchTemplateImdsv2',
          info: 'This launch template does not require IMDSv2 (MetadataOptions.HttpTokens is not required).',
          explanation:
            "IMDSv1 answers an unauthenticated GET, so a request forgery in the service or an open proxy on the host hands out the instance role's credentials.",
          rule: launchTemplateImdsv2,
        },
        {
          suffix: 'AlarmActionRunbook',
          info: 'This CloudWatch alarm has no enabled alarm action, or its description does not end with a link to its runbook (Runbook: docs/runbooks/<name>.md).',
          explanation:
            'An alarm without an action notifies nobody; an alarm without a runbook leaves the on-call engineer to work out what it means and what is safe to do.',
          rule: alarmActionRunbook,
        },
        {
          suffix: 'FisStopCondition',
          info: 'This FIS experiment template has no stop condition on a CloudWatch alarm.',
          explanation:
            'An experiment injects real faults for its whole duration unless an alarm stops it when customers are affected.',
          rule: fisStopCondition,
        },
        {
          suffix: 'LambdaLimits',
          info: 'This Lambda function has no explicit Timeout or no ReservedConcurrentExecutions.',
          explanation:
            "Reserved concurrency is a bulkhead: one function's backlog cannot starve the others, nor overload a shared dependency; the timeout is what visibility timeouts and callers are derived from (Lambda's default is 3 s).",
          rule: lambdaLimits,
        },
        {
          suffix: 'FailoverHealthCheck',
          info: 'This Route 53 failover record has neither a HealthCheckId nor an alias with EvaluateTargetHealth true.',
          explanation:
            'Route 53 considers a failover record without a health signal always healthy: a primary is never failed away from, a dead secondary still receives the traffic.',
          rule: failoverHealthCheck,
        },
        {
          suffix: 'IdempotencyLifetime',
          info: "This SQS consumer's idempotency records expire before a copy of a message can stop coming back (queue retention + DLQ retention + 1 day).",
          explanation:
            'A message redriven from the DLQ, or redelivered after an outage, is applied again once its idempotency record has expired.',
          rule: idempotencyLifetime,
        },
      ],
      scope,
      props,
    );
  }
}
