import { Template } from 'aws-cdk-lib/assertions';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, configWith, shippedConfig } from '../helpers/app';

describe('RegionalStack', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));

  test('deploys one stack per configured region into the configured account', () => {
    expect(stacks.primary.region).toBe('us-east-1');
    expect(stacks.standby?.region).toBe('us-west-2');
    expect(stacks.primary.account).toBe('111111111111');
  });

  test('takes its AZs from config, never from a lookup', () => {
    expect(stacks.primary.availabilityZones).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    expect(stacks.standby?.availabilityZones).toEqual(['us-west-2a', 'us-west-2b', 'us-west-2c']);
  });

  test('tags every taggable resource with app, environment and owner', () => {
    const template = Template.fromStack(stacks.primary);
    const vpc = Object.values(template.findResources('AWS::EC2::VPC'))[0];
    expect(vpc.Properties.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'app', Value: 'resilient-shop' },
        { Key: 'environment', Value: 'prod' },
        { Key: 'owner', Value: 'platform-team' },
      ]),
    );
  });

  test('production stacks have termination protection, lean stacks do not', () => {
    expect(stacks.primary.terminationProtection).toBe(true);
    expect(stacks.standby?.terminationProtection).toBe(true);
    expect(buildTestApp(shippedConfig('lean')).stacks.primary.terminationProtection).toBe(false);
  });

  test('lean without a standby region deploys a single stack', () => {
    const lean = buildTestApp(shippedConfig('lean'));
    expect(lean.stacks.standby).toBeUndefined();
    expect(lean.app.node.children.filter((c) => c instanceof RegionalStack)).toHaveLength(1);
  });

  test('stack names follow the app name', () => {
    const renamed = buildTestApp(configWith({ appName: 'acme-store' }));
    expect(renamed.stacks.primary.stackName).toBe('AcmeStore-Primary');
  });

  test('a standby role without standby config is refused', () => {
    const lean = shippedConfig('lean');
    const { app } = buildTestApp(lean);
    expect(() => new RegionalStack(app, 'Extra', { config: lean, role: 'standby' })).toThrow(
      /role "standby" needs config.standby/,
    );
  });

  test('matches the snapshot (production primary)', () => {
    // A Lambda version's logical id ends in a hash of the function, code included; the
    // bundle's source map names paths relative to the checkout, so that hash differs from
    // one clone directory to another. The asset hashes themselves are masked by
    // test/helpers/asset-hash-serializer.ts; version ids are object keys, masked here.
    const json = JSON.stringify(Template.fromStack(stacks.primary).toJSON()).replace(
      /(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}/g,
      '$1[CODE HASH]',
    );
    expect(JSON.parse(json)).toMatchSnapshot();
  });
});
