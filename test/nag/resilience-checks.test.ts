import { Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { COMPLIANCE_PACKS, addCompliancePacks } from '../../lib/compliance';
import { RESILIENCE_PACK, RESILIENCE_RULES, ResilienceChecks } from '../../lib/nag/resilience-checks';
import { newApp } from '../helpers/app';
import { synthFindings } from '../helpers/gates';
import { resilienceFindings, resourcePath } from './fixtures';

/** A launch template that leaves IMDSv1 on (LaunchTemplateImdsv2's failing fixture). */
function imdsv1Template(stack: Stack): ec2.LaunchTemplate {
  return new ec2.LaunchTemplate(stack, 'Template', {
    machineImage: ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-12345678' }),
    instanceType: new ec2.InstanceType('t4g.small'),
  });
}

/** A function with neither a timeout nor reserved concurrency (LambdaLimits' failing fixture). */
function unfencedFunction(stack: Stack): lambda.Function {
  return new lambda.Function(stack, 'Worker', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
  });
}

describe('the ResilienceChecks pack', () => {
  test('reports under its own plugin name, with Pack-Rule ids', () => {
    const pack = new ResilienceChecks();
    expect(pack.name).toBe(RESILIENCE_PACK);
    expect(pack.readPackName).toBe(RESILIENCE_PACK);
    expect(Object.values(RESILIENCE_RULES)).toEqual([
      'ResilientShopResilience-QueueRedrive',
      'ResilientShopResilience-AsgHealthCheck',
      'ResilientShopResilience-LaunchTemplateImdsv2',
      'ResilientShopResilience-AlarmActionRunbook',
      'ResilientShopResilience-FisStopCondition',
      'ResilientShopResilience-LambdaLimits',
      'ResilientShopResilience-FailoverHealthCheck',
      'ResilientShopResilience-IdempotencyLifetime',
    ]);
  });

  test('is one of the COMPLIANCE_PACKS, next to the wiring pack', () => {
    expect(COMPLIANCE_PACKS).toContain(RESILIENCE_PACK);
    expect(COMPLIANCE_PACKS).toContain('ResilientShopWiring');
  });

  test('runs in every synth that addCompliancePacks() sets up: a launch template with IMDSv1 fails it', () => {
    // GIVEN the registered packs and a launch template that leaves IMDSv1 on
    const app = newApp();
    addCompliancePacks(app);
    const stack = new Stack(app, 'Imds', { env: { account: '111111111111', region: 'us-east-1' } });
    const template = imdsv1Template(stack);
    // WHEN synthesized THEN the resilience pack reports it
    const findings = synthFindings(app).findings.filter((f) => f.plugin === RESILIENCE_PACK);
    expect(findings.map((f) => [f.rule, f.paths])).toEqual([
      [RESILIENCE_RULES.launchTemplateImdsv2, [resourcePath(template)]],
    ]);
  });

  test.each([
    ['the bare id', (id: string) => id],
    [
      "CDK's plugin-qualified id (Pack::id), as the synth report prints it",
      (id: string) => `${RESILIENCE_PACK}::${id}`,
    ],
  ])('a finding acknowledged on its resource with %s is not reported', (_, form) => {
    const findings = resilienceFindings((stack) => {
      const template = imdsv1Template(stack);
      Validations.of(template).acknowledge({
        id: form(RESILIENCE_RULES.launchTemplateImdsv2),
        reason: 'Fixture: the acknowledgement id the pack prints must silence exactly this finding.',
      });
    });
    expect(findings).toEqual([]);
  });

  test('acknowledging the bare rule id does not silence findings that carry a detail', () => {
    let fn!: lambda.Function;
    const findings = resilienceFindings((stack) => {
      fn = unfencedFunction(stack);
      Validations.of(fn).acknowledge({
        id: RESILIENCE_RULES.lambdaLimits,
        reason: 'Fixture: a bare rule id must not hide the specific timeout and concurrency findings.',
      });
    });
    expect(findings).toEqual([
      `${RESILIENCE_RULES.lambdaLimits}[no-reserved-concurrency] at ${resourcePath(fn)}`,
      `${RESILIENCE_RULES.lambdaLimits}[no-timeout] at ${resourcePath(fn)}`,
    ]);
  });

  test('validating a tree twice reads the changed template the second time', () => {
    // GIVEN a launch template with IMDSv1, validated once
    const stack = new Stack(undefined, 'Twice', { env: { account: '111111111111', region: 'us-east-1' } });
    const template = imdsv1Template(stack);
    const pack = new ResilienceChecks();
    expect(pack.validateScope(stack).success).toBe(false);
    // WHEN IMDSv2 is required THEN the same pack sees the fix
    (template.node.defaultChild as ec2.CfnLaunchTemplate).addPropertyOverride(
      'LaunchTemplateData.MetadataOptions.HttpTokens',
      'required',
    );
    expect(pack.validateScope(stack)).toEqual({ success: true, violations: [] });
  });
});
