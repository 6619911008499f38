import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { SecurityGroups } from '../../lib/constructs/security-groups';
import { ROUTE53_HEALTH_CHECKER_CIDRS } from '../../lib/fleet/route53-health-checkers';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, configWith, shippedConfig } from '../helpers/app';
import { IngressEdge, admits, egressGraph, ingressGraph } from '../helpers/ingress-graph';

function logicalId(stack: Stack, sg: ec2.ISecurityGroup): string {
  return stack.getLogicalId(sg.node.defaultChild as ec2.CfnSecurityGroup);
}

describe('SecurityGroups in the production RegionalStack', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));
  const stack: RegionalStack = stacks.primary;
  const sgs = stack.securityGroups;
  const id = (sg: ec2.ISecurityGroup) => logicalId(stack, sg);
  const graph = ingressGraph(Template.fromStack(stack));
  const dbPort = 5433;
  const proxyPort = 5432; // RDS Proxy listens on the engine default and cannot move
  const rotationGroup = () => {
    const rotation = stack.database.node.findChild('RotationSecurityGroup');
    return logicalId(stack, rotation as ec2.ISecurityGroup);
  };
  const migration = () => logicalId(stack, stack.migrationJob!.securityGroup);

  test('the whole ingress graph is exactly the designed one', () => {
    // GIVEN the default config (public storefront, app port 8080, database port 5433)
    // WHEN the stack is synthesized THEN these and only these inbound flows exist
    const endpoints = logicalId(stack, stack.network.endpointSecurityGroup);
    const rotation = rotationGroup();
    const expected: IngressEdge[] = [
      { to: id(sgs.loadBalancer), from: '0.0.0.0/0', protocol: 'tcp', fromPort: 443, toPort: 443 },
      { to: id(sgs.loadBalancer), from: '0.0.0.0/0', protocol: 'tcp', fromPort: 80, toPort: 80 },
      { to: id(sgs.app), from: id(sgs.loadBalancer), protocol: 'tcp', fromPort: 8080, toPort: 8080 },
      {
        to: id(sgs.databaseProxy),
        from: id(sgs.app),
        protocol: 'tcp',
        fromPort: proxyPort,
        toPort: proxyPort,
      },
      {
        to: id(sgs.databaseProxy),
        from: id(sgs.lambda),
        protocol: 'tcp',
        fromPort: proxyPort,
        toPort: proxyPort,
      },
      // added by RDS Proxy itself (with a reference to the cluster's port), once
      {
        to: id(sgs.database),
        from: id(sgs.databaseProxy),
        protocol: 'tcp',
        fromPort: dbPort,
        toPort: dbPort,
      },
      // the Secrets Manager rotation function (a Lambda) connects to the cluster itself
      { to: id(sgs.database), from: rotation, protocol: 'tcp', fromPort: dbPort, toPort: dbPort },
      { to: endpoints, from: id(sgs.app), protocol: 'tcp', fromPort: 443, toPort: 443 },
      { to: endpoints, from: id(sgs.lambda), protocol: 'tcp', fromPort: 443, toPort: 443 },
      // the rotation function calls Secrets Manager, which private DNS sends to the endpoint
      { to: endpoints, from: rotation, protocol: 'tcp', fromPort: 443, toPort: 443 },
      // the deploy-time migration job logs in to the cluster as shop_admin with the master
      // secret (read through the Secrets Manager endpoint)
      { to: id(sgs.database), from: migration(), protocol: 'tcp', fromPort: dbPort, toPort: dbPort },
      { to: endpoints, from: migration(), protocol: 'tcp', fromPort: 443, toPort: 443 },
    ];
    expect([...graph].sort(byKey)).toEqual([...expected].sort(byKey));
  });

  test('only the load balancer accepts traffic from the internet, and only on 443 and 80', () => {
    const fromWorld = graph.filter((e) => e.from === '0.0.0.0/0' || e.from === '::/0');
    expect(fromWorld.length).toBeGreaterThan(0);
    for (const e of fromWorld) {
      expect(e.to).toBe(id(sgs.loadBalancer));
      expect([443, 80]).toContain(e.fromPort);
      expect(e.toPort).toBe(e.fromPort);
    }
  });

  test('nothing allows SSH or RDP', () => {
    expect(graph.filter((e) => admits(e, 22) || admits(e, 3389))).toEqual([]);
  });

  test('the database is reachable only from the app and Lambda groups, through the proxy (the rotation function and the migration job aside)', () => {
    const toProxy = graph.filter((e) => e.to === id(sgs.databaseProxy));
    expect(toProxy.map((e) => e.from).sort()).toEqual([id(sgs.app), id(sgs.lambda)].sort());
    expect(toProxy.every((e) => e.fromPort === proxyPort && e.toPort === proxyPort)).toBe(true);
    const toCluster = graph.filter((e) => e.to === id(sgs.database));
    expect([...new Set(toCluster.map((e) => e.from))].sort()).toEqual(
      [id(sgs.databaseProxy), rotationGroup(), migration()].sort(),
    );
    expect(toCluster.every((e) => e.fromPort === dbPort && e.toPort === dbPort)).toBe(true);
    const onDatabasePorts = graph.filter((e) => admits(e, dbPort) || admits(e, proxyPort));
    expect(onDatabasePorts.every((e) => [id(sgs.databaseProxy), id(sgs.database)].includes(e.to))).toBe(true);
  });

  test('no group allows all outbound traffic', () => {
    const template = Template.fromStack(stack);
    for (const sg of Object.values(template.findResources('AWS::EC2::SecurityGroup'))) {
      const egress =
        ((sg.Properties as Record<string, unknown>).SecurityGroupEgress as Record<string, unknown>[]) ?? [];
      expect(egress.filter((rule) => rule.IpProtocol === '-1' && rule.CidrIp === '0.0.0.0/0')).toEqual([]);
    }
  });
});

describe('SecurityGroups in every synthesized stack', () => {
  const stacksOf = (name: 'default' | 'lean') => {
    const { stacks } = buildTestApp(shippedConfig(name));
    return [stacks.primary, ...(stacks.standby ? [stacks.standby] : [])];
  };
  const key = (e: IngressEdge) => `${e.from} -> ${e.to} ${e.protocol}/${e.fromPort}-${e.toPort}`;
  const repeated = (edges: IngressEdge[]) => edges.map(key).filter((k, i, all) => all.indexOf(k) !== i);

  test.each(['default', 'lean'] as const)(
    '%s: no two rules authorize the same flow (EC2 refuses a duplicate rule and the deploy fails)',
    (name) => {
      for (const stack of stacksOf(name)) {
        const template = Template.fromStack(stack);
        // GIVEN rules added by our constructs and by CDK's own (RDS Proxy, rotation)
        // THEN each flow is authorized once, counting resolved port references
        expect({ stack: stack.stackName, ingress: repeated(ingressGraph(template)) }).toEqual({
          stack: stack.stackName,
          ingress: [],
        });
        expect({ stack: stack.stackName, egress: repeated(egressGraph(template)) }).toEqual({
          stack: stack.stackName,
          egress: [],
        });
      }
    },
  );
});

describe('SecurityGroups with restricted CIDRs', () => {
  test('each configured CIDR gets 443 and 80, Route 53 health checkers 443, and nothing is open to the world', () => {
    // GIVEN a config that allows only two office ranges
    const config = configWith({ allowedIngressCidrs: ['203.0.113.0/24', '2001:db8::/32'] });
    const { stacks } = buildTestApp(config);
    // WHEN synthesized THEN the ALB admits exactly those ranges, plus the published
    // health-checker ranges on 443 so DNS failover health checks still reach it
    const graph = ingressGraph(Template.fromStack(stacks.primary));
    const external = graph.filter((e) => e.from.includes('/'));
    expect(external.map((e) => `${e.from}:${e.fromPort}`).sort()).toEqual(
      [
        '203.0.113.0/24:443',
        '203.0.113.0/24:80',
        '2001:db8::/32:443',
        '2001:db8::/32:80',
        ...ROUTE53_HEALTH_CHECKER_CIDRS.map((cidr) => `${cidr}:443`),
      ].sort(),
    );
  });
});

describe('SecurityGroups validation', () => {
  const vpc = () => new ec2.Vpc(new Stack(), 'Vpc', { availabilityZones: ['us-east-1a', 'us-east-1b'] });

  test.each([5432, 3306])('rejects the default database port %d', (port) => {
    const v = vpc();
    expect(
      () => new SecurityGroups(v, 'Sgs', { vpc: v, allowedIngressCidrs: ['0.0.0.0/0'], databasePort: port }),
    ).toThrow(new RegExp(`databasePort ${port} is a database engine's default port`));
  });

  test('rejects SSH as the app port', () => {
    const v = vpc();
    expect(
      () => new SecurityGroups(v, 'Sgs', { vpc: v, allowedIngressCidrs: ['0.0.0.0/0'], appPort: 22 }),
    ).toThrow(/appPort 22 is a remote-administration port/);
  });

  test('rejects an empty CIDR list', () => {
    const v = vpc();
    expect(() => new SecurityGroups(v, 'Sgs', { vpc: v, allowedIngressCidrs: [] })).toThrow(
      /allowedIngressCidrs is empty/,
    );
  });
});

function byKey(a: IngressEdge, b: IngressEdge): number {
  const key = (e: IngressEdge) => `${e.to}|${e.from}|${e.fromPort}|${e.toPort}`;
  return key(a).localeCompare(key(b));
}
