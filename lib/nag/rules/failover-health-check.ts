import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel, asArray, asObject, flatString } from '../template-model';

const FAILOVER = ['PRIMARY', 'SECONDARY'];

/** Whether one record set of a failover pair has a way for Route 53 to see its health. */
function failsOverOnHealth(record: Record<string, unknown>): boolean {
  if (!FAILOVER.includes(String(record.Failover))) return true;
  if (record.HealthCheckId !== undefined && record.HealthCheckId !== '') return true;
  const evaluate = asObject(record.AliasTarget).EvaluateTargetHealth;
  return evaluate === true || evaluate === 'true';
}

/**
 * Every Route 53 failover record has a health signal.
 *
 * For every AWS::Route53::RecordSet with `Failover` `PRIMARY` or `SECONDARY`, a
 * `HealthCheckId` or an `AliasTarget` with `EvaluateTargetHealth` true is required;
 * otherwise the record set is reported (`NON_COMPLIANT`, no detail). In an
 * AWS::Route53::RecordSetGroup, each failover record without one is reported by its set
 * identifier: `[<SetIdentifier>]`.
 *
 * Why: Route 53 considers a failover record without a health signal always healthy. A
 * primary without one is never failed away from, however dead its region; a secondary
 * without one receives the traffic when the primary fails even if it is down too, where
 * a health-checked secondary that is down makes Route 53 keep answering with the primary.
 *
 * AWS documentation: Amazon Route 53 API Reference, "ResourceRecordSet" (Failover: "If you
 * omit the HealthCheckId element for the secondary resource record set, and if the primary
 * resource record set is unhealthy, Route 53 always responds to DNS queries with the
 * applicable value from the secondary resource record set"; failover alias records need
 * EvaluateTargetHealth true); Amazon Route 53 Developer Guide, "Configuring DNS failover".
 */
export function failoverHealthCheck(node: CfnResource): NagRuleResult {
  const type = node.cfnResourceType;
  if (type !== 'AWS::Route53::RecordSet' && type !== 'AWS::Route53::RecordSetGroup') {
    return NagRuleCompliance.NOT_APPLICABLE;
  }
  const p = TemplateModel.of(node).resourceOf(node).properties;
  if (type === 'AWS::Route53::RecordSet') {
    if (!FAILOVER.includes(String(p.Failover))) return NagRuleCompliance.NOT_APPLICABLE;
    return failsOverOnHealth(p) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  const records = asArray(p.RecordSets).map(asObject);
  if (!records.some((r) => FAILOVER.includes(String(r.Failover)))) return NagRuleCompliance.NOT_APPLICABLE;
  const findings = records.filter((r) => !failsOverOnHealth(r)).map((r) => flatString(r.SetIdentifier));
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
