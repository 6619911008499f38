import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { IConstruct } from 'constructs';
import { RESILIENCE_PACK, ResilienceChecks } from '../../lib/nag/resilience-checks';
import { WIRING_PACK, WiringChecks } from '../../lib/nag/wiring-checks';
import { newApp } from '../helpers/app';
import { synthFindings } from '../helpers/gates';

/** One wiring finding on one construct: `<rule id>[<finding>] at <construct path>`. */
export type WiringFinding = string;

/**
 * Builds a fixture stack (account and region fixed, cdk.json's feature flags), registers
 * the wiring pack alone, synthesizes, and returns the pack's findings.
 */
export function wiringFindings(build: (stack: Stack) => void): WiringFinding[] {
  const app = newApp();
  const stack = new Stack(app, 'Fixture', { env: { account: '111111111111', region: 'us-east-1' } });
  build(stack);
  Validations.of(app).addPlugins(new WiringChecks(app));
  return synthFindings(app)
    .findings.filter((f) => f.plugin === WIRING_PACK)
    .flatMap((f) => f.paths.map((path) => `${f.rule} at ${path}`))
    .sort();
}

/**
 * Builds a fixture stack like {@link wiringFindings}, registers the resilience pack alone,
 * synthesizes, and returns the pack's findings: `<rule id>[<finding>] at <construct path>`.
 */
export function resilienceFindings(build: (stack: Stack) => void): WiringFinding[] {
  const app = newApp();
  const stack = new Stack(app, 'Fixture', { env: { account: '111111111111', region: 'us-east-1' } });
  build(stack);
  Validations.of(app).addPlugins(new ResilienceChecks(app));
  return synthFindings(app)
    .findings.filter((f) => f.plugin === RESILIENCE_PACK)
    .flatMap((f) => f.paths.map((path) => `${f.rule} at ${path}`))
    .sort();
}

/** The logical id of a construct's CloudFormation resource, as the findings name it. */
export function logicalId(construct: IConstruct): string {
  const resource = CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild;
  if (!CfnResource.isCfnResource(resource)) throw new Error(`${construct.node.path} has no CfnResource`);
  return Stack.of(resource).resolve(resource.logicalId) as string;
}

/** The construct path of a construct's CloudFormation resource. */
export function resourcePath(construct: IConstruct): string {
  return (CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild!).node.path;
}

/** A small VPC with isolated subnets only (nothing else for the rules to read). */
export function isolatedVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', {
    ipAddresses: ec2.IpAddresses.cidr('10.0.0.0/16'),
    maxAzs: 2,
    natGateways: 0,
    restrictDefaultSecurityGroup: false,
    subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
}
