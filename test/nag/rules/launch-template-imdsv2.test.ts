import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.launchTemplateImdsv2;

function template(stack: Stack, props: Partial<ec2.LaunchTemplateProps> = {}): ec2.LaunchTemplate {
  return new ec2.LaunchTemplate(stack, 'Template', {
    machineImage: ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-12345678' }),
    instanceType: new ec2.InstanceType('t4g.small'),
    ...props,
  });
}

describe('LaunchTemplateImdsv2: every launch template requires IMDSv2', () => {
  test('a launch template that leaves HttpTokens at EC2’s default is reported', () => {
    // GIVEN a launch template with no metadata options
    let lt!: ec2.LaunchTemplate;
    const findings = resilienceFindings((stack) => {
      lt = template(stack);
    });
    // THEN it is reported, with the bare rule id (one way to fail)
    expect(findings).toEqual([`${RULE} at ${resourcePath(lt)}`]);
  });

  test('a launch template with httpTokens optional is reported', () => {
    let lt!: ec2.LaunchTemplate;
    const findings = resilienceFindings((stack) => {
      lt = template(stack, { httpTokens: ec2.LaunchTemplateHttpTokens.OPTIONAL });
    });
    expect(findings).toEqual([`${RULE} at ${resourcePath(lt)}`]);
  });

  test('a launch template that requires IMDSv2 passes', () => {
    expect(resilienceFindings((stack) => template(stack, { requireImdsv2: true }))).toEqual([]);
  });

  test('a launch template with the metadata endpoint turned off passes (no IMDS at all)', () => {
    expect(resilienceFindings((stack) => template(stack, { httpEndpoint: false }))).toEqual([]);
  });
});
