import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel, TemplateResource, asArray, asObject } from '../template-model';

/** What the template says about the Availability Zones an Auto Scaling group launches into. */
interface Zones {
  /** Distinct zones, each as the JSON of its value (a name, or `Fn::Select` over `Fn::GetAZs`). */
  readonly known: Set<string>;
  /** Whether some subnet's zone is not in the template (an imported subnet id, a parameter). */
  readonly unknown: boolean;
}

/** The zones of the group's subnets (`VPCZoneIdentifier`), or of its `AvailabilityZones`. */
function zonesOf(model: TemplateModel, group: TemplateResource): Zones {
  const known = new Set<string>();
  let unknown = false;
  const subnets = group.properties.VPCZoneIdentifier;
  if (subnets !== undefined) {
    if (!Array.isArray(subnets)) return { known, unknown: true };
    for (const value of subnets) {
      const subnet = model.target(value, 'AWS::EC2::Subnet');
      const zone = subnet?.properties.AvailabilityZone ?? subnet?.properties.AvailabilityZoneId;
      if (zone === undefined) unknown = true;
      else known.add(JSON.stringify(zone));
    }
    return { known, unknown };
  }
  const zones = group.properties.AvailabilityZones;
  // Fn::GetAZs lists every zone of the region, and every region has at least two.
  if (asObject(zones)['Fn::GetAZs'] !== undefined) return { known: new Set(['a', 'b']), unknown: false };
  if (!Array.isArray(zones)) return { known, unknown: zones !== undefined };
  for (const zone of zones) known.add(JSON.stringify(zone));
  return { known, unknown };
}

/** Whether the group is registered with a load balancer (target group, Classic, or traffic source). */
function behindLoadBalancer(group: TemplateResource): boolean {
  const p = group.properties;
  const sources = asArray(p.TrafficSources).map(asObject);
  return (
    asArray(p.TargetGroupARNs).length > 0 ||
    asArray(p.LoadBalancerNames).length > 0 ||
    sources.some((s) => s.Type === 'elbv2' || s.Type === 'elb')
  );
}

/**
 * Every Auto Scaling group replaces instances its load balancer finds unhealthy, across at
 * least two Availability Zones.
 *
 * For every AWS::AutoScaling::AutoScalingGroup, reports:
 *
 * - `[no-elb-health-check]`: `HealthCheckType` (a comma-separated list) does not include
 *   `ELB`;
 * - `[no-load-balancer]`: no `TargetGroupARNs`, `LoadBalancerNames` or `elb`/`elbv2`
 *   `TrafficSources`, so an ELB health check has nothing to report;
 * - `[single-az]`: the group's subnets (`VPCZoneIdentifier`: each subnet's
 *   `AvailabilityZone` in the template), or its `AvailabilityZones`, span fewer than two
 *   zones (`Fn::GetAZs` counts as every zone of the region; `Fn::Select` of different
 *   indexes as different zones);
 * - `[azs-not-in-template]`: fewer than two zones are known and some subnet's zone is not
 *   in the template (an imported subnet): acknowledge it, naming the zones.
 *
 * Why: with EC2 health checks alone, an instance whose service has hung or crashed passes
 * (the VM is running), stays in service, and is never replaced while the load balancer
 * routes around it: capacity shrinks silently. A group in one zone loses every instance
 * with that zone, and cannot rebalance into another.
 *
 * AWS documentation: Amazon EC2 Auto Scaling User Guide, "About the health checks for your
 * Auto Scaling group" (Elastic Load Balancing health checks must be turned on for the group)
 * and "Example: Distribute instances across Availability Zones"; Amazon EC2 Auto Scaling
 * API Reference, "CreateAutoScalingGroup" (HealthCheckType: "A comma-separated value string
 * of one or more health check types").
 */
export function asgHealthCheck(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::AutoScaling::AutoScalingGroup') return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const group = model.resourceOf(node);
  const findings: string[] = [];
  const types = typeof group.properties.HealthCheckType === 'string' ? group.properties.HealthCheckType : '';
  if (!types.split(',').some((t) => t.trim().toUpperCase() === 'ELB')) findings.push('no-elb-health-check');
  if (!behindLoadBalancer(group)) findings.push('no-load-balancer');
  const zones = zonesOf(model, group);
  if (zones.known.size < 2) findings.push(zones.unknown ? 'azs-not-in-template' : 'single-az');
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
