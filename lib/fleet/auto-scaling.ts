import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import * as timings from './timings';

/** What the fleet's Auto Scaling group is made of. */
export interface FleetAutoScalingGroupOptions {
  /** The VPC; the group spans its private subnets with egress. */
  readonly vpc: ec2.IVpc;
  readonly launchTemplate: ec2.ILaunchTemplate;
  /** The group's fixed name (the instance role and the boot script name it). */
  readonly autoScalingGroupName: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** The launch lifecycle hook the boot script completes once the service is ready. */
  readonly lifecycleHookName: string;
  /** Follow ARC zonal shifts (AZ impairment policy). */
  readonly zonalShift: boolean;
  /** Where launch and termination notifications go. */
  readonly notificationTopic?: sns.ITopic;
}

/**
 * The fleet's Auto Scaling group (`AutoScalingGroup`): ELB health checks with the grace
 * period of lib/fleet/timings.ts, a launch lifecycle hook in the group itself that holds
 * each instance until the service is ready, launch-before-terminate maintenance,
 * capacity rebalancing, balanced AZ distribution, a 14-day instance lifetime, group
 * metrics, notifications, and (with `zonalShift`) the AZ-impairment policy for zonal shift.
 */
export function createAutoScalingGroup(
  scope: Construct,
  options: FleetAutoScalingGroupOptions,
): autoscaling.AutoScalingGroup {
  const group = new autoscaling.AutoScalingGroup(scope, 'AutoScalingGroup', {
    vpc: options.vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    launchTemplate: options.launchTemplate,
    autoScalingGroupName: options.autoScalingGroupName,
    minCapacity: options.minCapacity,
    maxCapacity: options.maxCapacity,
    healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
      additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
      gracePeriod: timings.HEALTH_CHECK_GRACE,
    }),
    defaultInstanceWarmup: timings.INSTANCE_WARMUP,
    // Launch the replacement before terminating, whatever the reason (health, rebalancing,
    // instance lifetime): capacity never dips below the desired count.
    minHealthyPercentage: 100,
    maxHealthyPercentage: 110,
    capacityRebalance: true,
    azCapacityDistributionStrategy: autoscaling.CapacityDistributionStrategy.BALANCED_BEST_EFFORT,
    // Every instance is replaced within 14 days: its OS packages and the secrets it read
    // at start are never older than that.
    maxInstanceLifetime: Duration.days(14),
    groupMetrics: [autoscaling.GroupMetrics.all()],
    notifications: options.notificationTopic
      ? [{ topic: options.notificationTopic, scalingEvents: autoscaling.ScalingEvents.ALL }]
      : undefined,
  });
  const cfnGroup = group.node.defaultChild as autoscaling.CfnAutoScalingGroup;
  // In the group itself, not as a separate hook resource: a separate hook is created after
  // the group, and the instances of the first launch would skip it.
  cfnGroup.lifecycleHookSpecificationList = [
    {
      lifecycleHookName: options.lifecycleHookName,
      lifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
      heartbeatTimeout: timings.LAUNCH_TIMEOUT.toSeconds(),
      defaultResult: 'ABANDON',
    },
  ];
  // cfn-lint 1.51's schema predates the AutoScalingInstanceRefresh update policy
  // (CloudFormation and aws-cdk-lib have it since mid-2026) and reports it as unknown
  // (E3016). Only that check is switched off, and only on this resource.
  cfnGroup.addMetadata('cfn-lint', { config: { ignore_checks: ['E3016'] } });
  if (options.zonalShift) {
    cfnGroup.availabilityZoneImpairmentPolicy = {
      zonalShiftEnabled: true,
      impairedZoneHealthCheckBehavior: 'IgnoreUnhealthy',
    };
  }
  return group;
}

/**
 * The fleet's target group (`TargetGroup`): HTTP to the app port of the group's instances,
 * health checked on `/health/ready` with the timings of lib/fleet/timings.ts, a
 * deregistration delay equal to the service's shutdown budget, and weighted random
 * routing with anomaly mitigation.
 */
export function createTargetGroup(
  scope: Construct,
  options: { readonly vpc: ec2.IVpc; readonly appPort: number; readonly group: autoscaling.AutoScalingGroup },
): elbv2.ApplicationTargetGroup {
  return new elbv2.ApplicationTargetGroup(scope, 'TargetGroup', {
    vpc: options.vpc,
    port: options.appPort,
    protocol: elbv2.ApplicationProtocol.HTTP,
    targetType: elbv2.TargetType.INSTANCE,
    targets: [options.group],
    healthCheck: {
      path: '/health/ready',
      protocol: elbv2.Protocol.HTTP,
      port: 'traffic-port',
      interval: timings.HEALTH_CHECK_INTERVAL,
      timeout: timings.HEALTH_CHECK_TIMEOUT,
      healthyThresholdCount: timings.HEALTHY_THRESHOLD,
      unhealthyThresholdCount: timings.UNHEALTHY_THRESHOLD,
      healthyHttpCodes: '200',
    },
    deregistrationDelay: timings.DEREGISTRATION_DELAY,
    // Weighted random with anomaly mitigation sends less traffic to a target whose errors
    // and latency stand out (a gray failure the health check does not see). Slow start
    // does not combine with it, and is not needed: a target is ready when it registers.
    loadBalancingAlgorithmType: elbv2.TargetGroupLoadBalancingAlgorithmType.WEIGHTED_RANDOM,
    enableAnomalyMitigation: true,
  });
}

/**
 * Target tracking on average CPU (`CpuTracking`) and on ALB requests per target
 * (`RequestCountTracking`); Auto Scaling follows whichever asks for more instances.
 */
export function addTargetTracking(
  group: autoscaling.AutoScalingGroup,
  options: { readonly cpuTargetPercent: number; readonly requestsPerInstancePerMinute: number },
): void {
  group.scaleOnCpuUtilization('CpuTracking', { targetUtilizationPercent: options.cpuTargetPercent });
  const requestTracking = group.scaleOnRequestCount('RequestCountTracking', {
    targetRequestsPerMinute: options.requestsPerInstancePerMinute,
  });
  // CDK makes the policy depend on the listener that its metric label already references;
  // cfn-lint reports the DependsOn as redundant (W3005). The reference alone orders creation.
  (requestTracking.node.defaultChild as autoscaling.CfnScalingPolicy).addDeletionOverride('DependsOn');
}
