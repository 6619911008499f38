import { Duration, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { isolatedVpc, resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.asgHealthCheck;

interface FleetOptions {
  readonly elbHealthCheck: boolean;
  readonly behindLoadBalancer: boolean;
  /** Launch into the first zone only. */
  readonly oneZone?: boolean;
}

/** An Auto Scaling group in the fixture VPC's isolated subnets (two zones), launched from an IMDSv2 template. */
function fleet(stack: Stack, options: FleetOptions): autoscaling.AutoScalingGroup {
  const vpc = isolatedVpc(stack);
  const group = new autoscaling.AutoScalingGroup(stack, 'Fleet', {
    vpc,
    vpcSubnets: {
      subnetType: ec2.SubnetType.PRIVATE_ISOLATED,
      availabilityZones: options.oneZone ? [vpc.availabilityZones[0]] : undefined,
    },
    launchTemplate: new ec2.LaunchTemplate(stack, 'Template', {
      machineImage: ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-12345678' }),
      instanceType: new ec2.InstanceType('t4g.small'),
      requireImdsv2: true,
    }),
    minCapacity: 2,
    healthChecks: options.elbHealthCheck
      ? autoscaling.HealthChecks.withAdditionalChecks({
          additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
          gracePeriod: Duration.minutes(5),
        })
      : autoscaling.HealthChecks.ec2(),
  });
  if (options.behindLoadBalancer) {
    const targets = new elbv2.ApplicationTargetGroup(stack, 'Targets', {
      vpc,
      port: 8080,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.INSTANCE,
    });
    group.attachToApplicationTargetGroup(targets);
  }
  return group;
}

const groupPath = (group: autoscaling.AutoScalingGroup) => resourcePath(group.node.findChild('ASG'));

describe('AsgHealthCheck: every Auto Scaling group uses ELB health checks over at least two zones', () => {
  test('a group with EC2 health checks and no load balancer is reported for both', () => {
    // GIVEN CDK's default health check (EC2 only) and no target group
    let group!: autoscaling.AutoScalingGroup;
    const findings = resilienceFindings((stack) => {
      group = fleet(stack, { elbHealthCheck: false, behindLoadBalancer: false });
    });
    // THEN both gaps are reported on the group
    expect(findings).toEqual([
      `${RULE}[no-elb-health-check] at ${groupPath(group)}`,
      `${RULE}[no-load-balancer] at ${groupPath(group)}`,
    ]);
  });

  test('a group behind a target group with EC2 health checks only is reported', () => {
    let group!: autoscaling.AutoScalingGroup;
    const findings = resilienceFindings((stack) => {
      group = fleet(stack, { elbHealthCheck: false, behindLoadBalancer: true });
    });
    expect(findings).toEqual([`${RULE}[no-elb-health-check] at ${groupPath(group)}`]);
  });

  test('a group behind a target group, with ELB health checks, over two zones passes', () => {
    const findings = resilienceFindings((stack) => {
      fleet(stack, { elbHealthCheck: true, behindLoadBalancer: true });
    });
    expect(findings).toEqual([]);
  });

  test('a group whose subnets are all in one zone is reported, though the VPC spans two', () => {
    let group!: autoscaling.AutoScalingGroup;
    const findings = resilienceFindings((stack) => {
      group = fleet(stack, { elbHealthCheck: true, behindLoadBalancer: true, oneZone: true });
    });
    expect(findings).toEqual([`${RULE}[single-az] at ${groupPath(group)}`]);
  });

  describe('written as L1', () => {
    function l1Group(stack: Stack, zones: Partial<autoscaling.CfnAutoScalingGroupProps>) {
      return new autoscaling.CfnAutoScalingGroup(stack, 'Group', {
        minSize: '2',
        maxSize: '4',
        healthCheckType: 'ELB,EBS',
        targetGroupArns: [
          'arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/app/0123456789abcdef',
        ],
        launchTemplate: { launchTemplateId: 'lt-0123456789abcdef0', version: '1' },
        ...zones,
      });
    }

    test('subnets the template does not describe are reported as unknown zones, to acknowledge', () => {
      let group!: autoscaling.CfnAutoScalingGroup;
      const findings = resilienceFindings((stack) => {
        group = l1Group(stack, {
          vpcZoneIdentifier: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        });
      });
      expect(findings).toEqual([`${RULE}[azs-not-in-template] at ${resourcePath(group)}`]);
    });

    test('AvailabilityZones listing two zones passes, and ELB may come with other types', () => {
      const findings = resilienceFindings((stack) => {
        l1Group(stack, { availabilityZones: ['us-east-1a', 'us-east-1b'] });
      });
      expect(findings).toEqual([]);
    });

    test('AvailabilityZones listing one zone is reported', () => {
      let group!: autoscaling.CfnAutoScalingGroup;
      const findings = resilienceFindings((stack) => {
        group = l1Group(stack, { availabilityZones: ['us-east-1a'] });
      });
      expect(findings).toEqual([`${RULE}[single-az] at ${resourcePath(group)}`]);
    });
  });
});
