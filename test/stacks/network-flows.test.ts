/**
 * The table of network flows the system needs, per stack of both profiles. Each flow
 * must be open end to end (the sender's egress AND the receiver's ingress admit it), and
 * every rule in the template must serve a flow of the table: nothing open that nothing
 * needs. A tier that adds a caller adds its row here, or this test fails.
 */
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AppConfig } from '../../lib/config';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, configWith, shippedConfig } from '../helpers/app';
import { ROUTE53_HEALTH_CHECKER_CIDRS } from '../../lib/fleet/route53-health-checkers';
import { IngressEdge, egressGraph, ingressGraph } from '../helpers/ingress-graph';

/**
 * A node of the flow table: a role, resolved to a security group per stack, or to CIDRs
 * (`internet`: the config's allowedIngressCidrs; `healthCheckers`: the Route 53
 * health-checker ranges the load balancer admits because those CIDRs do not cover them;
 * `natGateways`: the prefix list of the VPC's NAT gateway Elastic IPs, admitted for the
 * same reason).
 */
type Role =
  | 'internet'
  | 'healthCheckers'
  | 'natGateways'
  | 'alb'
  | 'app'
  | 'lambda'
  | 'proxy'
  | 'cluster'
  | 'rotation'
  | 'migration'
  | 'endpoints';

/** The roles that stand for CIDRs rather than security groups. */
type CidrRole = 'internet' | 'healthCheckers' | 'natGateways';
const CIDR_ROLES: readonly Role[] = ['internet', 'healthCheckers', 'natGateways'];

/** A flow the system needs: who reaches whom on which port, and why. */
interface Flow {
  readonly from: Role;
  readonly to: Role;
  readonly port: number;
  readonly why: string;
}

/** The CDK placeholder that means "no egress" on a group created with allowAllOutbound: false. */
const NO_EGRESS_PLACEHOLDER = '255.255.255.255/32';

/** The flows a stack needs, from what it contains. */
function neededFlows(stack: RegionalStack): Flow[] {
  const appPort = stack.securityGroups.appPort;
  const clusterPort = stack.database.port;
  const hasProxy = stack.database.proxy !== undefined;
  const hasEndpoints = Object.keys(stack.network.interfaceEndpoints).length > 0;
  const flows: Flow[] = [
    { from: 'internet', to: 'alb', port: 443, why: 'customers reach the storefront' },
    { from: 'internet', to: 'alb', port: 80, why: 'the ALB redirects HTTP to HTTPS' },
    { from: 'alb', to: 'app', port: appPort, why: 'the ALB forwards to the checkout service' },
  ];
  if (stack.loadBalancer.healthCheckerCidrs.length > 0) {
    flows.push({
      from: 'healthCheckers',
      to: 'alb',
      port: 443,
      why: 'Route 53 health checkers call /health/ready for DNS failover (the allowed CIDRs miss them)',
    });
  }
  if (stack.loadBalancer.vpcEgressCidrs.length > 0) {
    flows.push({
      from: 'natGateways',
      to: 'alb',
      port: 443,
      why: "the certificate probe calls the public name from the VPC, through the NAT gateways' Elastic IPs (the allowed CIDRs miss them)",
    });
  }
  if (hasProxy) {
    flows.push(
      { from: 'app', to: 'proxy', port: 5432, why: 'the service connects through RDS Proxy' },
      { from: 'lambda', to: 'proxy', port: 5432, why: 'the workers connect through RDS Proxy' },
      { from: 'proxy', to: 'cluster', port: clusterPort, why: 'RDS Proxy logs in to the cluster' },
    );
  } else {
    flows.push(
      {
        from: 'app',
        to: 'cluster',
        port: clusterPort,
        why: 'no proxy here: the standby fleet reaches the promoted writer',
      },
      {
        from: 'lambda',
        to: 'cluster',
        port: clusterPort,
        why: 'no proxy here: the workers reach the promoted writer',
      },
    );
  }
  // The inventory reconciler (workers' group), scheduled in both regions (a run on the
  // standby's read-only secondary skips). EMF metrics leave through its logs, and it signs
  // its IAM token locally: the database is its only flow.
  flows.push(
    hasProxy
      ? {
          from: 'lambda',
          to: 'proxy',
          port: 5432,
          why: 'the inventory reconciler releases expired reservations and recounts stock through RDS Proxy',
        }
      : {
          from: 'lambda',
          to: 'cluster',
          port: clusterPort,
          why: 'no proxy here: the inventory reconciler reaches the cluster (it skips its runs until promotion)',
        },
  );
  // The payment-retry worker (workers' group), in both regions: the database as the
  // application user (IAM token signed locally), Secrets Manager for the gateway's API key
  // (an endpoint where there is one, below), the gateway itself over 443 to the internet
  // (EXTERNAL_HTTPS); DynamoDB goes through the gateway endpoint, the queue is polled by Lambda.
  flows.push(
    hasProxy
      ? {
          from: 'lambda',
          to: 'proxy',
          port: 5432,
          why: 'the payment-retry worker charges deferred orders and settles them through RDS Proxy',
        }
      : {
          from: 'lambda',
          to: 'cluster',
          port: clusterPort,
          why: 'no proxy here: the payment-retry worker reaches the promoted writer',
        },
  );
  if (hasEndpoints) {
    flows.push({
      from: 'lambda',
      to: 'endpoints',
      port: 443,
      why: "the payment-retry worker reads the gateway's API key (Secrets Manager, private DNS)",
    });
  }
  if (stack.database.rotationSecurityGroup) {
    flows.push({ from: 'rotation', to: 'cluster', port: clusterPort, why: 'rotation sets the new password' });
  }
  if (stack.migrationJob) {
    flows.push({
      from: 'migration',
      to: 'cluster',
      port: clusterPort,
      why: 'the migration job logs in to the writer as the schema owner (TLS, master password)',
    });
    if (hasEndpoints) {
      flows.push({
        from: 'migration',
        to: 'endpoints',
        port: 443,
        why: 'the migration job reads the master secret (Secrets Manager, private DNS)',
      });
    }
  }
  if (hasEndpoints) {
    flows.push(
      {
        from: 'app',
        to: 'endpoints',
        port: 443,
        why: 'the service calls SQS, Secrets Manager, CloudWatch, ...',
      },
      { from: 'lambda', to: 'endpoints', port: 443, why: 'the workers call AWS APIs' },
    );
    if (stack.database.rotationSecurityGroup) {
      flows.push({
        from: 'rotation',
        to: 'endpoints',
        port: 443,
        why: 'rotation calls Secrets Manager (private DNS)',
      });
    }
  }
  return flows;
}

/** Egress to anywhere on 443 that these roles need beyond the VPC (APIs without an endpoint, the gateway). */
const EXTERNAL_HTTPS: Role[] = ['app', 'lambda', 'rotation'];

/**
 * The roles that may send 443 anywhere in a stack: the migration job only where there is
 * no Secrets Manager endpoint (it then reaches Secrets Manager through the NAT gateways).
 */
function externalHttps(stack: RegionalStack): Role[] {
  const noEndpoints = Object.keys(stack.network.interfaceEndpoints).length === 0;
  return [...EXTERNAL_HTTPS, ...(stack.migrationJob && noEndpoints ? (['migration'] as const) : [])];
}

function groupsOf(stack: RegionalStack): Map<Role, string> {
  const id = (sg: ec2.ISecurityGroup) => stack.getLogicalId(sg.node.defaultChild as ec2.CfnSecurityGroup);
  const sgs = stack.securityGroups;
  const groups = new Map<Role, string>([
    ['alb', id(sgs.loadBalancer)],
    ['app', id(sgs.app)],
    ['lambda', id(sgs.lambda)],
    ['proxy', id(sgs.databaseProxy)],
    ['cluster', id(sgs.database)],
    ['endpoints', id(stack.network.endpointSecurityGroup)],
  ]);
  if (stack.database.rotationSecurityGroup) groups.set('rotation', id(stack.database.rotationSecurityGroup));
  if (stack.migrationJob) groups.set('migration', id(stack.migrationJob.securityGroup));
  return groups;
}

/** The CIDRs a CIDR role stands for in a stack. */
function cidrsOf(stack: RegionalStack, config: AppConfig, role: CidrRole): readonly string[] {
  if (role === 'internet') return config.allowedIngressCidrs;
  if (role === 'healthCheckers') return stack.loadBalancer.healthCheckerCidrs;
  // Elastic IPs are allocated at deploy: the rule names the prefix list that holds them.
  const list = stack.loadBalancer.vpcEgressPrefixList;
  return list ? [`prefix-list:${JSON.stringify(stack.resolve(list.attrPrefixListId))}`] : [];
}

const covers = (e: IngressEdge, port: number) =>
  e.protocol === 'tcp' && e.fromPort <= port && port <= e.toPort;

function stacksUnderTest(): [string, RegionalStack, AppConfig][] {
  const productionConfig = shippedConfig('default');
  const leanConfig = shippedConfig('lean');
  const restrictedConfig = configWith({ allowedIngressCidrs: ['203.0.113.0/24'] });
  const production = buildTestApp(productionConfig).stacks;
  const lean = buildTestApp(leanConfig).stacks;
  const restricted = buildTestApp(restrictedConfig).stacks;
  return [
    ['production primary', production.primary, productionConfig],
    ['production standby', production.standby!, productionConfig],
    ['lean primary', lean.primary, leanConfig],
    ['restricted-ingress primary', restricted.primary, restrictedConfig],
  ];
}

describe.each(stacksUnderTest())('network flows of the %s stack', (_name, stack, config) => {
  const template = Template.fromStack(stack);
  const ingress = ingressGraph(template);
  const egress = egressGraph(template).filter((e) => e.to !== NO_EGRESS_PLACEHOLDER);
  const groups = groupsOf(stack);
  const roleOf = new Map([...groups].map(([role, id]) => [id, role]));
  const flows = neededFlows(stack);
  const cidrRole = (cidr: string): Role | undefined =>
    (['internet', 'healthCheckers', 'natGateways'] as const).find((role) =>
      cidrsOf(stack, config, role).includes(cidr),
    );

  test.each(flows.map((f) => [`${f.from} -> ${f.to}:${f.port} (${f.why})`, f] as const))(
    'needed flow is open end to end: %s',
    (_label, flow) => {
      const to = groups.get(flow.to)!;
      if (CIDR_ROLES.includes(flow.from)) {
        // every CIDR of the role reaches the ALB on the port
        const cidrs = cidrsOf(stack, config, flow.from as CidrRole);
        expect(cidrs.length).toBeGreaterThan(0);
        const missing = cidrs.filter(
          (cidr) => !ingress.some((e) => e.to === to && e.from === cidr && covers(e, flow.port)),
        );
        expect(missing).toEqual([]);
        return;
      }
      const from = groups.get(flow.from)!;
      expect({
        ingress: ingress.some((e) => e.to === to && e.from === from && covers(e, flow.port)),
      }).toEqual({
        ingress: true,
      });
      const egressOk = egress.some(
        (e) => e.from === from && (e.to === to || e.to === '0.0.0.0/0') && covers(e, flow.port),
      );
      // A group with no egress rule at all (not even CDK's placeholder) allows all
      // outbound traffic in CloudFormation.
      const allOutbound = !egressGraph(template).some((e) => e.from === from);
      expect({ egress: egressOk || allOutbound }).toEqual({ egress: true });
    },
  );

  test('every ingress rule serves a needed flow (nothing open that nothing needs)', () => {
    const unexplained = ingress.filter((e) => {
      const toRole = roleOf.get(e.to);
      const fromRole: Role | undefined =
        e.from.includes('/') || e.from.startsWith('prefix-list:') ? cidrRole(e.from) : roleOf.get(e.from);
      return !flows.some(
        (f) => f.to === toRole && f.from === fromRole && e.fromPort === f.port && e.toPort === f.port,
      );
    });
    expect(unexplained).toEqual([]);
  });

  test('every egress rule serves a needed flow or is HTTPS out for a role that calls the internet', () => {
    const unexplained = egress.filter((e) => {
      const fromRole = roleOf.get(e.from);
      if (e.to === '0.0.0.0/0') {
        return !(
          fromRole &&
          externalHttps(stack).includes(fromRole) &&
          e.fromPort === 443 &&
          e.toPort === 443
        );
      }
      const toRole = roleOf.get(e.to);
      return !flows.some(
        (f) => f.from === fromRole && f.to === toRole && e.fromPort === f.port && e.toPort === f.port,
      );
    });
    expect(unexplained).toEqual([]);
  });
});

describe('Route 53 health checkers reach the load balancer whatever allowedIngressCidrs says', () => {
  test('open to the internet: no extra rule (0.0.0.0/0 already covers every checker)', () => {
    // GIVEN the production config (0.0.0.0/0) WHEN built THEN no checker range is added
    const stack = buildTestApp(shippedConfig('default')).stacks.primary;
    expect(stack.loadBalancer.healthCheckerCidrs).toEqual([]);
  });

  test('a narrow allow list: every published checker range is admitted on 443, and on 443 only', () => {
    // GIVEN a config admitting one office range
    const stack = buildTestApp(configWith({ allowedIngressCidrs: ['203.0.113.0/24'] })).stacks.primary;
    const ingress = ingressGraph(Template.fromStack(stack));
    const alb = stack.getLogicalId(
      stack.securityGroups.loadBalancer.node.defaultChild as ec2.CfnSecurityGroup,
    );
    // THEN each Route 53 checker range reaches the ALB on 443, never on 80 or anything else
    expect([...stack.loadBalancer.healthCheckerCidrs].sort()).toEqual(
      [...ROUTE53_HEALTH_CHECKER_CIDRS].sort(),
    );
    for (const cidr of ROUTE53_HEALTH_CHECKER_CIDRS) {
      expect(ingress.filter((e) => e.to === alb && e.from === cidr)).toEqual([
        { to: alb, from: cidr, protocol: 'tcp', fromPort: 443, toPort: 443 },
      ]);
    }
  });

  test('an allow list that already covers a checker range adds no duplicate rule for it', () => {
    const stack = buildTestApp(configWith({ allowedIngressCidrs: ['203.0.113.0/24', '54.243.31.0/24'] }))
      .stacks.primary;
    expect(stack.loadBalancer.healthCheckerCidrs).not.toContain('54.243.31.192/26');
    expect(stack.loadBalancer.healthCheckerCidrs).toHaveLength(ROUTE53_HEALTH_CHECKER_CIDRS.length - 1);
  });
});
