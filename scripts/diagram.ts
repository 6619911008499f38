/**
 * Draws the synthesized production app (config/default.json) to docs/architecture.png,
 * the picture the README shows.
 *
 *   npm run diagram                           # synth, then draw (needs Graphviz's `dot`)
 *   npx tsx scripts/diagram.ts --no-synth     # draw from the cdk.out already there
 *
 * The drawing is cdk-dia's (https://github.com/pistazie/cdk-dia, a devDependency): it reads
 * the construct tree CDK writes to cdk.out/tree.json, lays every construct out as a
 * cluster with AWS icons and links the resources whose properties reference each other,
 * and Graphviz renders it. Fed the whole tree it draws some 350 boxes, most of them IAM
 * roles, alarms, log groups and custom-resource plumbing, so this script hands it a copy of
 * the tree cut down to the resources that explain the architecture ({@link DRAWN_TYPES}),
 * of the primary stack and the DNS failover stack (the standby is the primary's mirror):
 *
 * - a construct left with one drawn child is replaced by it, under the outer (more
 *   telling) name: `OrderEventsWorker/Worker/Function` is drawn as `OrderEventsWorker`;
 * - so an L2 construct that wraps one drawn resource is drawn as that resource's icon, and
 *   one that wraps more (the VPC, the Aurora cluster) is drawn open, a cluster;
 * - two clusters never share a label (Graphviz drops the second of a name).
 *
 * Why cdk-dia: it is maintained (releases in 2026, tree loading kept up with CDK 2.2xx),
 * it reads the cloud assembly instead of instrumenting the app, its `aws-cdk-lib ^2.201`
 * dependency resolves to the app's own copy, and it needs Graphviz only: no Docker, no
 * headless browser. AWS PDK's cdk-graph diagram plugin is deprecated and wants cdk-nag 2;
 * cfn-diagram renders images through draw.io and a headless Chromium.
 *
 * The resources drawn, as `<type> <construct path>` lines, go into the PNG itself (a tEXt
 * chunk, {@link PNG_RESOURCES_KEYWORD}): test/scripts/diagram.test.ts compares them with a
 * fresh synth, so the committed image cannot silently fall behind the templates.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { AwsDiagramGenerator, AwsEdgeResolver, AwsIconSupplier, Graphviz, Tree } from 'cdk-dia';

/** The repository root. */
export const ROOT = join(__dirname, '..');

/** The image this script writes (committed; the README shows it). */
export const DIAGRAM_PNG = join(ROOT, 'docs', 'architecture.png');

/**
 * Graphviz resolution of the PNG. cdk-dia asks for 200 dpi, a 9,000-pixel-wide image for
 * this app; at 72 every label is still legible at full size, in a fifth of the bytes.
 */
export const DIAGRAM_DPI = 72;

/** The message when Graphviz is missing: what to install, nothing else. */
export const GRAPHVIZ_MISSING =
  "Graphviz's `dot` is not on PATH: install graphviz: apt-get install graphviz (macOS: brew install graphviz)";

/** The PNG text chunk keyword under which the drawn resources are recorded. */
export const PNG_RESOURCES_KEYWORD = 'resilient-shop:drawn-resources';

/** The tier each drawn CloudFormation type belongs to. */
export type Tier =
  'network' | 'edge' | 'web fleet' | 'data' | 'messaging and workers' | 'DNS failover' | 'alarms' | 'audit';

/**
 * The resource types drawn, by tier. Everything else is plumbing for this picture: IAM
 * roles and policies, security groups and their rules (docs/architecture.md has the
 * security-group graph), route tables, KMS keys, log groups, alarms (one per runbook, in
 * docs/runbooks/), resource policies, custom-resource providers, subnet and parameter
 * groups, AWS FIS templates (docs/game-day.md). Subnets and VPC endpoints are left out
 * too: nothing references them but the VPC, so Graphviz puts all 20 in one row, which
 * tripled the picture's width; the VPC's NAT gateways stand for its public subnets, and
 * docs/architecture.md lists the subnets and endpoints.
 */
export const DRAWN_TYPES: Readonly<Record<string, Tier>> = {
  'AWS::EC2::VPC': 'network',
  'AWS::EC2::NatGateway': 'network',
  'AWS::ElasticLoadBalancingV2::LoadBalancer': 'edge',
  'AWS::WAFv2::WebACL': 'edge',
  'AWS::CertificateManager::Certificate': 'edge',
  'AWS::ARCZonalShift::ZonalAutoshiftConfiguration': 'edge',
  'AWS::AutoScaling::AutoScalingGroup': 'web fleet',
  'AWS::ElasticLoadBalancingV2::TargetGroup': 'web fleet',
  'AWS::RDS::GlobalCluster': 'data',
  'AWS::RDS::DBCluster': 'data',
  'AWS::RDS::DBInstance': 'data',
  'AWS::RDS::DBProxy': 'data',
  'AWS::DynamoDB::GlobalTable': 'data',
  'AWS::Backup::BackupVault': 'data',
  'AWS::Backup::BackupPlan': 'data',
  'AWS::SQS::Queue': 'messaging and workers',
  'AWS::Lambda::Function': 'messaging and workers',
  'AWS::Events::Rule': 'messaging and workers',
  'AWS::Route53::RecordSet': 'DNS failover',
  'AWS::Route53::HealthCheck': 'DNS failover',
  'AWS::SNS::Topic': 'alarms',
  'AWS::CloudWatch::Dashboard': 'alarms',
  'AWS::CloudTrail::Trail': 'audit',
};

/** The stacks drawn: the primary and the DNS failover stack, by the suffix of their name. */
export const DRAWN_STACK_SUFFIXES = ['-Primary', '-DnsFailover'] as const;

/** A node of cdk.out/tree.json (only what is read here). */
export interface TreeNode {
  readonly id: string;
  readonly path: string;
  readonly children?: Readonly<Record<string, TreeNode>>;
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly constructInfo?: { readonly fqn: string; readonly version?: string };
}

/** cdk.out/tree.json. */
export interface TreeJson {
  readonly version: string;
  readonly tree: TreeNode;
}

/** What is drawn: the cut-down tree for cdk-dia and the resources in it. */
export interface DiagramModel {
  /** The tree handed to cdk-dia. */
  readonly tree: TreeJson;
  /** The stack ids drawn. */
  readonly stacks: readonly string[];
  /** One `<type> <construct path>` line per drawn resource, sorted. */
  readonly resources: readonly string[];
}

const CFN_TYPE = 'aws:cdk:cloudformation:type';

/** The CloudFormation type of a tree node, when it is a resource. */
export function cfnType(node: TreeNode): string | undefined {
  const type = node.attributes?.[CFN_TYPE];
  return typeof type === 'string' ? type : undefined;
}

/** Whether a tree node is a stack (drawn as its own cluster, never merged away). */
function isStack(node: TreeNode): boolean {
  return node.constructInfo?.fqn === 'aws-cdk-lib.Stack';
}

/**
 * Constructs that are CDK's machinery, not the app's: custom-resource providers (their
 * handler is an `AWS::Lambda::Function` like the app's workers), the `AwsCustomResource`
 * singleton function, the bucket-notification handler.
 */
export function isCdkPlumbing(node: TreeNode): boolean {
  const fqn = node.constructInfo?.fqn ?? '';
  return (
    fqn === 'aws-cdk-lib.CustomResourceProviderBase' ||
    fqn === 'aws-cdk-lib.custom_resources.Provider' ||
    /CustomResourceProvider$|^AWS[0-9a-f]{32}$|^BucketNotificationsHandler/.test(node.id)
  );
}

/** The drawn part of a subtree, or undefined when nothing in it is drawn. */
function cut(node: TreeNode): TreeNode | undefined {
  if (isCdkPlumbing(node)) return undefined;
  const type = cfnType(node);
  const children = Object.values(node.children ?? {})
    .map(cut)
    .filter((c): c is TreeNode => c !== undefined);
  if (type !== undefined && !Object.hasOwn(DRAWN_TYPES, type)) return undefined;
  if (type === undefined && children.length === 0) return undefined;
  // One drawn child and nothing of its own: draw the child, under this (outer) name.
  if (type === undefined && children.length === 1 && !isStack(node)) return { ...children[0], id: node.id };
  const drawn: TreeNode = {
    id: node.id,
    path: node.path,
    attributes: node.attributes,
    constructInfo: node.constructInfo,
  };
  return children.length === 0
    ? drawn
    : { ...drawn, children: Object.fromEntries(children.map((c) => [c.id, c])) };
}

/**
 * Gives clusters (nodes with children) unique labels: cdk-dia names a Graphviz cluster by
 * its label, and Graphviz ignores a second cluster of the same name. A repeated one is
 * qualified with its parent's id (`OrderEvents Queue`).
 */
function uniqueClusterLabels(root: TreeNode): TreeNode {
  const counts = new Map<string, number>();
  const count = (node: TreeNode): void => {
    const children = Object.values(node.children ?? {});
    if (children.length > 0) counts.set(node.id, (counts.get(node.id) ?? 0) + 1);
    children.forEach(count);
  };
  count(root);
  const relabel = (node: TreeNode, parentId: string): TreeNode => {
    const children = Object.values(node.children ?? {});
    if (children.length === 0) return node;
    const id = (counts.get(node.id) ?? 0) > 1 ? `${parentId} ${node.id}` : node.id;
    return { ...node, id, children: Object.fromEntries(children.map((c) => [c.id, relabel(c, node.id)])) };
  };
  return relabel(root, '');
}

/** Every drawn resource under a node, as `<type> <construct path>`. */
function resourceLines(node: TreeNode): string[] {
  const type = cfnType(node);
  return [
    ...(type !== undefined ? [`${type} ${node.path}`] : []),
    ...Object.values(node.children ?? {}).flatMap(resourceLines),
  ];
}

/**
 * The diagram of a synthesized app: its tree cut down to the drawn stacks and resources.
 * Throws when a drawn stack is missing (a lean config has no DNS failover stack: the
 * picture is of the production shape).
 */
export function diagramModel(treeJson: TreeJson): DiagramModel {
  const stacks = Object.values(treeJson.tree.children ?? {});
  const drawn = DRAWN_STACK_SUFFIXES.map((suffix) => {
    const stack = stacks.find((s) => s.id.endsWith(suffix));
    if (stack === undefined) {
      throw new Error(
        `no stack named *${suffix} in the cloud assembly (stacks: ${stacks.map((s) => s.id).join(', ')}): ` +
          'the diagram is of the production shape; synthesize config/default.json',
      );
    }
    return stack;
  });
  const children = drawn
    .map((stack) => cut(stack))
    .filter((s): s is TreeNode => s !== undefined)
    .map(uniqueClusterLabels);
  const tree: TreeJson = {
    version: treeJson.version,
    tree: { ...treeJson.tree, children: Object.fromEntries(children.map((s) => [s.id, s])) },
  };
  return {
    tree,
    stacks: drawn.map((s) => s.id),
    resources: children.flatMap(resourceLines).sort(),
  };
}

/** The Graphviz DOT source cdk-dia makes of a model (pure JavaScript: no Graphviz needed). */
export function diagramDot(model: DiagramModel): string {
  const iconsBase = dirname(require.resolve('cdk-dia/package.json'));
  const generator = new AwsDiagramGenerator(new AwsEdgeResolver(), new AwsIconSupplier(iconsBase));
  const diagram = generator.generate(
    Tree.fromObject(model.tree as unknown as Record<string, unknown>),
    // Collapsing is done here already (cut): cdk-dia's own would fold a construct into any
    // child whose path ends in `/Resource`, whole tiers included.
    false,
    false,
    [...model.stacks],
  );
  const dir = mkdtempSync(join(tmpdir(), 'diagram-'));
  try {
    const dotPath = join(dir, 'diagram.dot');
    new Graphviz().renderToDot(diagram, dotPath);
    return readFileSync(dotPath, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Throws {@link GRAPHVIZ_MISSING} unless `dot` runs. */
export function requireGraphviz(env: NodeJS.ProcessEnv = process.env): void {
  const result = spawnSync('dot', ['-V'], { env, stdio: 'ignore' });
  if (result.error !== undefined || result.status !== 0) throw new Error(GRAPHVIZ_MISSING);
}

/** Renders DOT source to PNG with Graphviz at {@link DIAGRAM_DPI}. */
export function renderPng(dot: string): Buffer {
  const result = spawnSync('dot', ['-Tpng', `-Gdpi=${DIAGRAM_DPI}`], {
    input: dot,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error !== undefined) throw new Error(`${GRAPHVIZ_MISSING} (${result.error.message})`);
  if (result.status !== 0) throw new Error(`dot failed (exit ${result.status}): ${result.stderr.toString()}`);
  return result.stdout;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The chunks of a PNG, in order. */
function pngChunks(png: Buffer): { type: string; data: Buffer; start: number; end: number }[] {
  if (png.length < 8 || !png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG file');
  const chunks = [];
  let offset = 8;
  while (offset + 12 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (end > png.length) throw new Error(`truncated PNG chunk ${type}`);
    chunks.push({ type, data: png.subarray(offset + 8, offset + 8 + length), start: offset, end });
    offset = end;
  }
  return chunks;
}

/** A PNG with the drawn resources recorded in a tEXt chunk right after IHDR. */
export function withDrawnResources(png: Buffer, resources: readonly string[]): Buffer {
  const [ihdr] = pngChunks(png);
  if (ihdr?.type !== 'IHDR') throw new Error('PNG does not start with IHDR');
  const body = Buffer.concat([
    Buffer.from('tEXt', 'latin1'),
    Buffer.from(PNG_RESOURCES_KEYWORD, 'latin1'),
    Buffer.from([0]),
    Buffer.from(resources.join('\n'), 'latin1'),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length - 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([png.subarray(0, ihdr.end), length, body, crc, png.subarray(ihdr.end)]);
}

/** The drawn resources recorded in a PNG, or undefined when it records none. */
export function drawnResources(png: Buffer): string[] | undefined {
  const prefix = Buffer.from(`${PNG_RESOURCES_KEYWORD}\0`, 'latin1');
  const chunk = pngChunks(png).find(
    (c) => c.type === 'tEXt' && c.data.subarray(0, prefix.length).equals(prefix),
  );
  if (chunk === undefined) return undefined;
  const text = chunk.data.toString('latin1', prefix.length);
  return text === '' ? [] : text.split('\n');
}

/** Synthesizes (unless `--no-synth`), draws and writes {@link DIAGRAM_PNG}. */
function main(argv: readonly string[]): void {
  requireGraphviz();
  if (!argv.includes('--no-synth')) {
    const synth = spawnSync('npm', ['run', 'synth'], { cwd: ROOT, stdio: 'inherit' });
    if (synth.status !== 0) throw new Error(`npm run synth failed (exit ${synth.status ?? synth.signal})`);
  }
  const treeJson = JSON.parse(readFileSync(join(ROOT, 'cdk.out', 'tree.json'), 'utf8')) as TreeJson;
  const model = diagramModel(treeJson);
  writeFileSync(DIAGRAM_PNG, withDrawnResources(renderPng(diagramDot(model)), model.resources));
  process.stdout.write(
    `wrote ${DIAGRAM_PNG} (${model.resources.length} resources of ${model.stacks.join(', ')})\n`,
  );
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`diagram: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
