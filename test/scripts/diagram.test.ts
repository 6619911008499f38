import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../../lib/app';
import {
  DIAGRAM_PNG,
  DRAWN_TYPES,
  DiagramModel,
  GRAPHVIZ_MISSING,
  Tier,
  TreeJson,
  TreeNode,
  diagramDot,
  diagramModel,
  drawnResources,
  requireGraphviz,
  withDrawnResources,
} from '../../scripts/diagram';
import { cdkJsonContext, shippedConfig } from '../helpers/app';

/**
 * cdk.out/tree.json of the app for config/default.json, as `cdk synth` writes it (Lambda
 * bundling skipped: it changes no construct, only the time).
 */
function synthesizedTree(): TreeJson {
  const app = new App({
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    outdir: mkdtempSync(join(tmpdir(), 'resilient-shop-diagram-')),
  });
  buildApp(app, shippedConfig('default'));
  try {
    app.synth();
  } catch (err) {
    // The assembly is written before the compliance packs run; their findings are
    // test/compliance.test.ts's to report.
    if (!existsSync(join(app.outdir, 'validation-report.json'))) throw err;
  }
  return JSON.parse(readFileSync(join(app.outdir, 'tree.json'), 'utf8')) as TreeJson;
}

/** A tree node: a CloudFormation resource when `type` is given, else a plain construct. */
function node(path: string, type?: string, children: TreeNode[] = [], fqn?: string): TreeNode {
  return {
    id: path.split('/').pop() ?? path,
    path,
    ...(type !== undefined ? { attributes: { 'aws:cdk:cloudformation:type': type } } : {}),
    ...(fqn !== undefined ? { constructInfo: { fqn } } : {}),
    ...(children.length > 0 ? { children: Object.fromEntries(children.map((c) => [c.id, c])) } : {}),
  };
}

const stack = (id: string, children: TreeNode[]): TreeNode =>
  node(id, undefined, children, 'aws-cdk-lib.Stack');
const tree = (...stacks: TreeNode[]): TreeJson => ({
  version: 'tree-0.1',
  tree: node('', undefined, stacks),
});

/** The clusters of a node, recursively, by id path (`Shop-Primary/Database/Cluster`). */
function clusters(n: TreeNode, prefix = ''): string[] {
  const children = Object.values(n.children ?? {});
  if (children.length === 0) return [];
  const here = `${prefix}${n.id}`;
  return [here, ...children.flatMap((c) => clusters(c, `${here}/`))];
}

/** A valid 1x1 grey PNG, built by hand so the chunk tests need no image file. */
function tinyPng(): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]); // 1x1, 8-bit greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, 0x80]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('diagramModel on a small tree', () => {
  const small = tree(
    stack('Shop-Primary', [
      node('Shop-Primary/OrderEventsWorker', undefined, [
        node('Shop-Primary/OrderEventsWorker/Worker', undefined, [
          node('Shop-Primary/OrderEventsWorker/Worker/Function', undefined, [
            node('Shop-Primary/OrderEventsWorker/Worker/Function/Resource', 'AWS::Lambda::Function'),
            node('Shop-Primary/OrderEventsWorker/Worker/Function/ServiceRole', undefined, [
              node('Shop-Primary/OrderEventsWorker/Worker/Function/ServiceRole/Resource', 'AWS::IAM::Role'),
            ]),
          ]),
        ]),
      ]),
      node('Shop-Primary/Database', undefined, [
        node('Shop-Primary/Database/Key', undefined, [
          node('Shop-Primary/Database/Key/Resource', 'AWS::KMS::Key'),
        ]),
        node('Shop-Primary/Database/Cluster', undefined, [
          node('Shop-Primary/Database/Cluster/Resource', 'AWS::RDS::DBCluster'),
          node('Shop-Primary/Database/Cluster/Writer', undefined, [
            node('Shop-Primary/Database/Cluster/Writer/Resource', 'AWS::RDS::DBInstance'),
          ]),
          node('Shop-Primary/Database/Cluster/Proxy', undefined, [
            node('Shop-Primary/Database/Cluster/Proxy/Resource', 'AWS::RDS::DBProxy'),
          ]),
        ]),
        node('Shop-Primary/Database/CpuHigh', undefined, [
          node('Shop-Primary/Database/CpuHigh/Resource', 'AWS::CloudWatch::Alarm'),
        ]),
      ]),
      node('Shop-Primary/Alarms', undefined, [
        node('Shop-Primary/Alarms/Topic', undefined, [
          node('Shop-Primary/Alarms/Topic/Resource', 'AWS::SNS::Topic'),
        ]),
      ]),
      node('Shop-Primary/Custom::VpcRestrictDefaultSGCustomResourceProvider', undefined, [
        node(
          'Shop-Primary/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler',
          'AWS::Lambda::Function',
        ),
        node('Shop-Primary/Custom::VpcRestrictDefaultSGCustomResourceProvider/Role', 'AWS::IAM::Role'),
      ]),
    ]),
    stack('Shop-DnsFailover', [
      node('Shop-DnsFailover/Alarms', undefined, [
        node('Shop-DnsFailover/Alarms/Topic', undefined, [
          node('Shop-DnsFailover/Alarms/Topic/Resource', 'AWS::SNS::Topic'),
        ]),
      ]),
      node('Shop-DnsFailover/FailoverDns', undefined, [
        node('Shop-DnsFailover/FailoverDns/PrimaryRecord', undefined, [
          node('Shop-DnsFailover/FailoverDns/PrimaryRecord/Resource', 'AWS::Route53::RecordSet'),
        ]),
        node('Shop-DnsFailover/FailoverDns/PrimaryHealthCheck', undefined, [
          node('Shop-DnsFailover/FailoverDns/PrimaryHealthCheck/Resource', 'AWS::Route53::HealthCheck'),
        ]),
      ]),
    ]),
    stack('Shop-Standby', [node('Shop-Standby/Alarms', 'AWS::SNS::Topic')]),
  );

  test('draws the primary and DNS failover stacks, without plumbing, and records what it draws', () => {
    const model = diagramModel(small);
    expect(model.stacks).toEqual(['Shop-Primary', 'Shop-DnsFailover']);
    expect(model.resources).toEqual([
      'AWS::Lambda::Function Shop-Primary/OrderEventsWorker/Worker/Function/Resource',
      'AWS::RDS::DBCluster Shop-Primary/Database/Cluster/Resource',
      'AWS::RDS::DBInstance Shop-Primary/Database/Cluster/Writer/Resource',
      'AWS::RDS::DBProxy Shop-Primary/Database/Cluster/Proxy/Resource',
      'AWS::Route53::HealthCheck Shop-DnsFailover/FailoverDns/PrimaryHealthCheck/Resource',
      'AWS::Route53::RecordSet Shop-DnsFailover/FailoverDns/PrimaryRecord/Resource',
      'AWS::SNS::Topic Shop-DnsFailover/Alarms/Topic/Resource',
      'AWS::SNS::Topic Shop-Primary/Alarms/Topic/Resource',
    ]);
    expect(Object.keys(model.tree.tree.children ?? {})).toEqual(['Shop-Primary', 'Shop-DnsFailover']);
  });

  test('replaces one-child constructs by the child under the outer name, and opens the rest', () => {
    const primary = diagramModel(small).tree.tree.children?.['Shop-Primary'];
    const children = primary?.children ?? {};
    // OrderEventsWorker/Worker/Function/Resource is one box named OrderEventsWorker.
    expect(children['OrderEventsWorker']?.path).toBe(
      'Shop-Primary/OrderEventsWorker/Worker/Function/Resource',
    );
    expect(children['OrderEventsWorker']?.children).toBeUndefined();
    // Database keeps one drawn child, the Aurora cluster, which wraps three drawn resources:
    // one cluster of three boxes named Database, not one icon.
    expect(children['Database']?.path).toBe('Shop-Primary/Database/Cluster');
    expect(Object.keys(children['Database']?.children ?? {})).toEqual(['Resource', 'Writer', 'Proxy']);
    expect(children['Database']?.children?.['Writer']?.path).toBe(
      'Shop-Primary/Database/Cluster/Writer/Resource',
    );
  });

  test('never gives two clusters one label (Graphviz would drop the second)', () => {
    // Two workers of the same construct id, each wrapping a function and its schedule.
    const doubled = tree(
      stack('Shop-Primary', [
        node('Shop-Primary/OrderEvents', undefined, [
          node('Shop-Primary/OrderEvents/Queue', 'AWS::SQS::Queue'),
          node('Shop-Primary/OrderEvents/Worker', undefined, [
            node('Shop-Primary/OrderEvents/Worker/Resource', 'AWS::Lambda::Function'),
            node('Shop-Primary/OrderEvents/Worker/Schedule', 'AWS::Events::Rule'),
          ]),
        ]),
        node('Shop-Primary/PaymentRetry', undefined, [
          node('Shop-Primary/PaymentRetry/Queue', 'AWS::SQS::Queue'),
          node('Shop-Primary/PaymentRetry/Worker', undefined, [
            node('Shop-Primary/PaymentRetry/Worker/Resource', 'AWS::Lambda::Function'),
            node('Shop-Primary/PaymentRetry/Worker/Schedule', 'AWS::Events::Rule'),
          ]),
        ]),
      ]),
      stack('Shop-DnsFailover', [node('Shop-DnsFailover/Topic', 'AWS::SNS::Topic')]),
    );
    const labels = Object.values(diagramModel(doubled).tree.tree.children ?? {}).flatMap((s) =>
      clusters(s).map((path) => path.split('/').pop()),
    );
    expect(labels).toContain('OrderEvents Worker');
    expect(labels).toContain('PaymentRetry Worker');
    expect(labels.length).toBe(new Set(labels).size);
  });

  test('refuses an assembly without the production stacks, and says why', () => {
    expect(() =>
      diagramModel(tree(stack('Shop-Primary', [node('Shop-Primary/T', 'AWS::SNS::Topic')]))),
    ).toThrow(
      /no stack named \*-DnsFailover in the cloud assembly \(stacks: Shop-Primary\).*synthesize config\/default\.json/,
    );
  });
});

describe('the drawn resources recorded in the PNG', () => {
  test('round-trip through a tEXt chunk, and the image stays a valid PNG', () => {
    const png = tinyPng();
    expect(drawnResources(png)).toBeUndefined();
    const lines = ['AWS::SNS::Topic A/Topic/Resource', 'AWS::SQS::Queue B/Queue/Resource'];
    const marked = withDrawnResources(png, lines);
    expect(drawnResources(marked)).toEqual(lines);
    // Same signature and IHDR, the text chunk next, with a CRC a PNG reader accepts.
    expect(marked.subarray(0, 33)).toEqual(png.subarray(0, 33));
    const length = marked.readUInt32BE(33);
    const body = marked.subarray(37, 41 + length);
    expect(body.subarray(0, 4).toString('latin1')).toBe('tEXt');
    expect(marked.readUInt32BE(41 + length)).toBe(crc32(body));
    expect(marked.subarray(45 + length)).toEqual(png.subarray(33));
  });

  test('a file that is not a PNG is refused', () => {
    expect(() => drawnResources(Buffer.from('<svg/>'))).toThrow('not a PNG file');
  });
});

describe('requireGraphviz', () => {
  test('fails with what to install when `dot` is not on PATH', () => {
    expect(() => requireGraphviz({ PATH: join(tmpdir(), 'no-graphviz-here') })).toThrow(GRAPHVIZ_MISSING);
    expect(GRAPHVIZ_MISSING).toContain('install graphviz: apt-get install graphviz');
  });
});

describe('docs/architecture.png and the app for config/default.json', () => {
  // Built once: the production app's construct tree and what the script draws of it.
  let model: DiagramModel;
  let dot: string;
  beforeAll(() => {
    model = diagramModel(synthesizedTree());
    dot = diagramDot(model);
  }, 600_000);

  /** The resource types each tier must show, whatever else is drawn. */
  const KEY_TYPES: Record<Tier, string[]> = {
    network: ['AWS::EC2::VPC', 'AWS::EC2::NatGateway'],
    edge: ['AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::WAFv2::WebACL'],
    'web fleet': ['AWS::AutoScaling::AutoScalingGroup'],
    data: [
      'AWS::RDS::GlobalCluster',
      'AWS::RDS::DBCluster',
      'AWS::RDS::DBProxy',
      'AWS::DynamoDB::GlobalTable',
    ],
    'messaging and workers': ['AWS::SQS::Queue', 'AWS::Lambda::Function'],
    'DNS failover': ['AWS::Route53::HealthCheck', 'AWS::Route53::RecordSet'],
    alarms: ['AWS::SNS::Topic'],
    audit: ['AWS::CloudTrail::Trail'],
  };

  test.each(Object.entries(KEY_TYPES))('tier %s: its key resource types are drawn', (tier, types) => {
    const drawn = new Set(model.resources.map((line) => line.split(' ')[0]));
    for (const type of types) expect(DRAWN_TYPES[type]).toBe(tier);
    expect(types.filter((type) => !drawn.has(type))).toEqual([]);
  });

  test('queues come with their DLQs, and every worker is drawn', () => {
    const paths = model.resources.map((line) => line.split(' ')[1]);
    for (const queue of ['OrderEvents', 'PaymentRetry']) {
      expect(paths).toContain(`ResilientShop-Primary/${queue}/Queue/Resource`);
      expect(paths).toContain(`ResilientShop-Primary/${queue}/DeadLetterQueue/Resource`);
    }
    const workers = model.resources.filter((line) => line.startsWith('AWS::Lambda::Function '));
    expect(workers.length).toBeGreaterThanOrEqual(5);
  });

  test('no plumbing is drawn: IAM, KMS, logs, alarms, security groups, custom resources', () => {
    const plumbing = model.resources.filter((line) =>
      /^(AWS::IAM::|AWS::KMS::|AWS::Logs::|AWS::CloudWatch::(Composite)?Alarm |AWS::EC2::SecurityGroup|Custom::)|CustomResourceProvider/.test(
        line,
      ),
    );
    expect(plumbing).toEqual([]);
  });

  test('the DOT cdk-dia makes has a box for every drawn resource and no two clusters of one name', () => {
    const missing = model.resources
      .map((line) => line.split(' ')[1].replace(/:/g, '_'))
      .filter((path) => !dot.includes(`"${path}" [`));
    expect(missing).toEqual([]);
    const clusterNames = [...dot.matchAll(/subgraph "(cluster-[^"]*)"/g)].map((m) => m[1]);
    expect(clusterNames.length).toBeGreaterThan(5);
    expect(clusterNames.length).toBe(new Set(clusterNames).size);
  });

  test('docs/architecture.png was drawn from the resources the templates have now', () => {
    const recorded = drawnResources(readFileSync(DIAGRAM_PNG));
    if (recorded === undefined)
      throw new Error('docs/architecture.png records no resources: run `npm run diagram`');
    const added = model.resources.filter((line) => !recorded.includes(line));
    const removed = recorded.filter((line) => !model.resources.includes(line));
    if (added.length > 0 || removed.length > 0) {
      throw new Error(
        'docs/architecture.png is stale: run `npm run diagram` (needs graphviz) and commit the image.\n' +
          `In the templates, not in the image (${added.length}):\n${added.join('\n')}\n` +
          `In the image, not in the templates (${removed.length}):\n${removed.join('\n')}`,
      );
    }
  });
});
