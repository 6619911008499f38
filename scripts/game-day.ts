/**
 * Renders docs/game-day.md from the AWS FIS experiment templates of the app synthesized for
 * config/default.json (one section per template) and config/lean.json (where each
 * experiment is deployed); with `--write`, writes the page.
 *
 *   npm run docs:game-day        # npx tsx scripts/game-day.ts --write
 *   npx tsx scripts/game-day.ts  # prints the page
 *
 * Everything on the page comes from the templates themselves: the hypothesis, blast radius
 * and what must hold from each template's `resilient-shop:game-day` Metadata, the targets,
 * actions, durations and stop alarms (with the runbook their description links) from its
 * properties. test/scripts/game-day.test.ts fails while the page differs from a fresh
 * rendering.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { loadConfig } from '../lib/config';
import { GAME_DAY_METADATA, GameDayNotes } from '../lib/constructs/chaos-experiments';

/** The repository root. */
export const ROOT = join(__dirname, '..');

/** The page this script writes. */
export const GAME_DAY_DOC = join(ROOT, 'docs', 'game-day.md');

/** The shipped configs the page covers: sections from the first, the deployment table from all. */
export const GAME_DAY_CONFIGS = ['default', 'lean'] as const;

/** A JSON object of a template (CloudFormation's shapes are read, not typed, here). */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A resource of a synthesized template. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Json;
  readonly Metadata?: Json;
}

/** One synthesized stack. */
export interface StackTemplate {
  /** The shipped config it was synthesized from (`default`, `lean`). */
  readonly config: string;
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  readonly resources: Readonly<Record<string, TemplateResource>>;
}

/**
 * Synthesizes the app for a shipped config as `cdk synth` would (cdk.json's feature flags)
 * and returns its templates. Lambda assets are not bundled: nothing on the page depends on
 * them, and bundling is most of the synth time.
 */
export function synthesizeShippedConfig(name: string): StackTemplate[] {
  const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({
    context: {
      ...cdkJson.context,
      'aws:cdk:enable-path-metadata': true,
      'aws:cdk:bundling-stacks': [],
    },
  });
  const config = loadConfig(join(ROOT, 'config', `${name}.json`));
  const stacks = buildApp(app, config);
  try {
    app.synth();
  } catch (err) {
    // The templates are written before the compliance packs run; their findings are
    // test/compliance.test.ts's to report, not a reason to leave this page stale.
    if (!existsSync(join(app.outdir, 'validation-report.json'))) throw err;
  }
  return [stacks.primary, stacks.standby]
    .filter((s) => s !== undefined)
    .map((stack) => ({
      config: name,
      stackName: stack.stackName,
      region: stack.region,
      account: stack.account,
      resources: (
        JSON.parse(readFileSync(join(app.outdir, stack.templateFile), 'utf8')) as {
          Resources: Record<string, TemplateResource>;
        }
      ).Resources,
    }));
}

/** An ISO 8601 duration of FIS (`PT30M`, `PT1H30M`, `PT90S`), in seconds. */
export function isoSeconds(value: string): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(value);
  if (!m || value === 'PT')
    throw new Error(`Not an ISO 8601 duration of hours, minutes and seconds: "${value}"`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** How long an action runs: its `duration`, or how long stopped instances stay stopped. */
function actionSeconds(action: Json): number {
  const p = (action.Parameters ?? {}) as Record<string, string>;
  return Math.max(
    p.duration ? isoSeconds(p.duration) : 0,
    p.startInstancesAfterDuration ? isoSeconds(p.startInstancesAfterDuration) : 0,
  );
}

/** How long an experiment runs: the longest chain of actions along `StartAfter`. */
export function experimentSeconds(actions: Record<string, Json>): number {
  const ends = new Map<string, number>();
  const end = (name: string, seen: string[]): number => {
    if (seen.includes(name))
      throw new Error(`Actions start after each other in a cycle: ${[...seen, name].join(' -> ')}`);
    const known = ends.get(name);
    if (known !== undefined) return known;
    const action = actions[name];
    if (!action) throw new Error(`An action starts after "${name}", which the template does not have`);
    const start = Math.max(0, ...((action.StartAfter ?? []) as string[]).map((n) => end(n, [...seen, name])));
    const value = start + actionSeconds(action);
    ends.set(name, value);
    return value;
  };
  return Math.max(0, ...Object.keys(actions).map((n) => end(n, [])));
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;

/** `30 minutes`, `1 hour 30 minutes`, `45 seconds`. */
export function humanDuration(seconds: number): string {
  if (seconds < 60) return plural(seconds, 'second');
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return [h ? plural(h, 'hour') : '', m ? plural(m, 'minute') : ''].filter(Boolean).join(' ');
}

/**
 * The runbook an alarm description links (`... Runbook: <location>`), as a link from
 * docs/game-day.md: `docs/runbooks/x.md` becomes `runbooks/x.md`; a URL stays a URL.
 */
export function runbookLink(description: string | undefined): string | undefined {
  const m = /Runbook: (\S+?)\.?$/.exec(description ?? '');
  if (!m) return undefined;
  return /^[a-z][a-z0-9+.-]*:/i.test(m[1]) ? m[1] : m[1].replace(/^docs\//, '');
}

/** What FIS undoes when an action ends or the experiment is stopped. */
const ROLLBACK: Readonly<Record<string, string>> = {
  'aws:ec2:stop-instances': 'starts the stopped instances again (those Auto Scaling has not replaced)',
  'aws:ec2:asg-insufficient-instance-capacity-error': "stops failing the group's launches",
  'aws:network:disrupt-connectivity':
    'gives the subnets their network ACL back and deletes the one it created (tagged `managedByFIS`)',
  'aws:rds:failover-db-cluster': 'undoes nothing of a failover: the former reader stays the writer',
  'aws:ssm:send-command': 'cancels the SSM command, which ends stress-ng',
  'aws:lambda:invocation-error':
    'deletes the fault configuration; the functions pick that up within about 20 seconds',
  'aws:arc:start-zonal-autoshift': 'cancels the zonal shift',
  'aws:fis:wait': '',
};

/** The part of an `aws:cdk:path` that names a construct: the stack prefix and `/Resource` dropped. */
function constructPath(resource: TemplateResource, stackName: string): string | undefined {
  const path = resource.Metadata?.['aws:cdk:path'] as string | undefined;
  return path?.replace(new RegExp(`^${stackName}/`), '').replace(/\/Resource$/, '');
}

/** Renders the values of one template: references resolved to what they name. */
class TemplateReader {
  constructor(private readonly stack: StackTemplate) {}

  /** A CloudFormation value as text: pseudo parameters resolved, references named. */
  public text(value: unknown): string {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      return String(value);
    if (Array.isArray(value)) return value.map((v) => this.text(v)).join(', ');
    const o = (value ?? {}) as Record<string, unknown>;
    if (typeof o.Ref === 'string') return this.ref(o.Ref);
    if (Array.isArray(o['Fn::GetAtt'])) return this.name(o['Fn::GetAtt'][0] as string);
    if (Array.isArray(o['Fn::Join'])) {
      const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => this.text(p)).join(separator);
    }
    throw new Error(`${this.stack.stackName}: cannot render ${JSON.stringify(value)}`);
  }

  /** What an ARN names: the one resource it references, or the ARN itself. */
  public arn(value: unknown): string {
    const ids = referencedResources(value).filter((id) => this.stack.resources[id]);
    if (ids.length !== 1) return `\`${this.text(value)}\``;
    const kind = RESOURCE_KINDS[this.stack.resources[ids[0]].Type];
    return kind ? `${kind} ${this.name(ids[0])}` : this.name(ids[0]);
  }

  /** An alarm: its description (runbook link made relative) and its construct path. */
  public alarm(value: unknown): string {
    const [id] = referencedResources(value);
    const alarm = this.stack.resources[id];
    if (!alarm || !/^AWS::CloudWatch::(Composite)?Alarm$/.test(alarm.Type)) {
      throw new Error(
        `${this.stack.stackName}: a stop condition names ${JSON.stringify(value)}, not an alarm of the stack`,
      );
    }
    const description = String(alarm.Properties?.AlarmDescription ?? '');
    const summary = description.replace(/\s*Runbook: \S+$/, '').replace(/\.$/, '');
    const runbook = runbookLink(description);
    const path = constructPath(alarm, this.stack.stackName) ?? id;
    return `${summary} (\`${path}\`)${runbook ? `; [runbook](${runbook})` : ''}`;
  }

  private ref(id: string): string {
    switch (id) {
      case 'AWS::Region':
        return this.stack.region;
      case 'AWS::AccountId':
        return this.stack.account;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      default:
        return this.literalName(id) ?? this.name(id);
    }
  }

  /** A resource's own name where the template gives one (the group's name, the cluster's id). */
  private literalName(id: string): string | undefined {
    const r = this.stack.resources[id];
    const name = r?.Properties?.AutoScalingGroupName ?? r?.Properties?.DBClusterIdentifier;
    return typeof name === 'string' ? name : undefined;
  }

  /** A resource as a reader finds it: a subnet by its Name tag and AZ, others by construct path. */
  public name(id: string): string {
    const r = this.stack.resources[id];
    if (!r) throw new Error(`${this.stack.stackName}: the template has no resource ${id}`);
    if (r.Type === 'AWS::EC2::Subnet') {
      const tags = (r.Properties?.Tags ?? []) as { Key: string; Value: string }[];
      const name = tags.find((t) => t.Key === 'Name')?.Value ?? id;
      return `subnet \`${name.replace(new RegExp(`^${this.stack.stackName}/`), '')}\` (${r.Properties?.AvailabilityZone})`;
    }
    const literal = this.literalName(id);
    return `\`${literal ?? constructPath(r, this.stack.stackName) ?? id}\``;
  }
}

/** What an ARN target names, in words (subnets say so themselves). */
const RESOURCE_KINDS: Readonly<Record<string, string>> = {
  'AWS::AutoScaling::AutoScalingGroup': 'group',
  'AWS::RDS::DBCluster': 'cluster',
  'AWS::ElasticLoadBalancingV2::LoadBalancer': 'load balancer',
  'AWS::Lambda::Function': 'function',
};

/** Logical ids a value references with Ref or Fn::GetAtt (pseudo parameters excluded). */
function referencedResources(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedResources);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === 'string') return o.Ref.startsWith('AWS::') ? [] : [o.Ref];
    if (Array.isArray(o['Fn::GetAtt'])) return [o['Fn::GetAtt'][0] as string];
    return Object.values(o).flatMap(referencedResources);
  }
  return [];
}

/** Text safe in a table cell. */
const cell = (text: string) => text.replace(/\s+/g, ' ').replace(/\|/g, '\\|');

/** The experiment templates of a stack, in template order, with their Name tag. */
export function experimentsOf(
  stack: StackTemplate,
): { id: string; name: string; resource: TemplateResource }[] {
  return Object.entries(stack.resources)
    .filter(([, r]) => r.Type === 'AWS::FIS::ExperimentTemplate')
    .map(([id, resource]) => ({ id, name: String(resource.Properties?.Tags?.Name ?? id), resource }));
}

/** The experiment's key: its Name tag without the stack name. */
const experimentKey = (stack: StackTemplate, name: string) => name.replace(`${stack.stackName}-`, '');

/** The duration line of a section. */
function durationText(seconds: number): string {
  return seconds === 0
    ? 'No duration of its own: each action is one API call, and the experiment ends once FIS has made them.'
    : `${humanDuration(seconds)}, the longest chain of actions.`;
}

/** One section of the page: everything a game day needs about one template. */
export function renderExperiment(
  stack: StackTemplate,
  experiment: { name: string; resource: TemplateResource },
): string {
  const reader = new TemplateReader(stack);
  const p = experiment.resource.Properties ?? {};
  const notes = experiment.resource.Metadata?.[GAME_DAY_METADATA] as GameDayNotes | undefined;
  if (!notes) {
    throw new Error(
      `${stack.stackName}: experiment template ${experiment.name} has no ${GAME_DAY_METADATA} Metadata`,
    );
  }
  const actions = (p.Actions ?? {}) as Record<string, Json>;
  const targets = (p.Targets ?? {}) as Record<string, Json>;
  const region = stack.region;

  const targetRows = Object.entries(targets).map(([name, t]) => {
    const selectedBy = [
      ...(t.ResourceArns ?? []).map((a: unknown) => reader.arn(a)),
      ...Object.entries((t.ResourceTags ?? {}) as Record<string, unknown>).map(
        ([k, v]) => `tag \`${k}\` = \`${reader.text(v)}\``,
      ),
      ...((t.Filters ?? []) as { Path: string; Values: unknown[] }[]).map(
        (flt) => `\`${flt.Path}\` in ${flt.Values.map((v) => `\`${reader.text(v)}\``).join(', ')}`,
      ),
      ...Object.entries((t.Parameters ?? {}) as Record<string, unknown>).map(
        ([k, v]) => `\`${k}\` = \`${reader.text(v)}\``,
      ),
    ];
    const selection = t.SelectionMode === 'ALL' ? 'all' : `\`${t.SelectionMode}\``;
    return `| \`${name}\` | \`${t.ResourceType}\` | ${cell(selectedBy.join('; '))} | ${selection} |`;
  });

  const actionRows = Object.entries(actions).map(([name, a]) => {
    const parameters = Object.entries((a.Parameters ?? {}) as Record<string, unknown>)
      .map(([k, v]) => `\`${k}\` = \`${reader.text(v)}\``)
      .join(', ');
    const on = Object.values((a.Targets ?? {}) as Record<string, string>)
      .map((t) => `\`${t}\``)
      .join(', ');
    const starts = a.StartAfter
      ? `after ${(a.StartAfter as string[]).map((s) => `\`${s}\``).join(', ')}`
      : 'at the start';
    return `| \`${name}\` | \`${a.ActionId}\` | ${cell(a.Description ?? '')} | ${on || '—'} | ${cell(parameters || '—')} | ${starts} |`;
  });

  const rollbacks = [
    ...new Set(
      Object.values(actions).map((a) => {
        const text = ROLLBACK[a.ActionId as string];
        if (text === undefined) {
          throw new Error(
            `${stack.stackName}: no rollback is described for action ${a.ActionId}: add it to ROLLBACK`,
          );
        }
        return text;
      }),
    ),
  ].filter(Boolean);

  const stopAlarms = ((p.StopConditions ?? []) as { Source: string; Value?: unknown }[]).map((c) => {
    if (c.Source !== 'aws:cloudwatch:alarm')
      throw new Error(`${stack.stackName}: ${experiment.name} has a stop condition that is not an alarm`);
    return `- ${reader.alarm(c.Value)}`;
  });
  const logGroup = referencedResources(p.LogConfiguration?.CloudWatchLogsConfiguration?.LogGroupArn)[0];
  const logGroupName = stack.resources[logGroup]?.Properties?.LogGroupName as string | undefined;
  const options = p.ExperimentOptions ?? {};
  const findId = `aws fis list-experiment-templates --region ${region} --query "experimentTemplates[?tags.Name=='${experiment.name}'].id" --output text`;

  return [
    `## ${notes.title} (${stack.stackName})`,
    '',
    `Template \`${experiment.name}\` in \`${stack.stackName}\` (${region}), from \`config/${stack.config}.json\`.`,
    '',
    `**Hypothesis.** ${notes.hypothesis}`,
    '',
    `**Blast radius.** ${notes.blastRadius}`,
    '',
    '| Target | Resource type | Selected by | Selection |',
    '| --- | --- | --- | --- |',
    ...targetRows,
    '',
    options.EmptyTargetResolutionMode === 'skip'
      ? 'A target that resolves to nothing is skipped with its actions; the others run.'
      : 'A target that resolves to nothing fails the experiment before any fault is injected.',
    '',
    '| Action | Fault | What it does | On | Parameters | Starts |',
    '| --- | --- | --- | --- | --- | --- |',
    ...actionRows,
    '',
    `**Duration.** ${durationText(experimentSeconds(actions))}`,
    '',
    '**Stop conditions.** The experiment stops when one of these alarms goes into ALARM, and does not start while one is in ALARM:',
    '',
    ...stopAlarms,
    '',
    '**Start.**',
    '',
    '```sh',
    `aws fis start-experiment --region ${region} --experiment-template-id "$(${findId})"`,
    '```',
    '',
    `**Abort.** \`aws fis stop-experiment --region ${region} --id <experiment id>\` (the id \`start-experiment\` printed). FIS then ${rollbacks.join('; ')}.`,
    '',
    '**What must hold.**',
    '',
    ...notes.mustHold.map((m) => `- ${m}`),
    '',
    '**Watch.**',
    '',
    ...notes.watch.map((w) => `- ${w}`),
    '',
    `**Experiment log.** CloudWatch Logs group \`${logGroupName ?? reader.text(p.LogConfiguration?.CloudWatchLogsConfiguration?.LogGroupArn)}\` (schema version ${p.LogConfiguration?.LogSchemaVersion}).`,
    '',
  ].join('\n');
}

/** Which experiment each stack of each config deploys, and for which AZ. */
export function renderDeploymentTable(stacks: readonly StackTemplate[]): string {
  const columns = stacks.map((s) => `\`${s.stackName}\` (${s.region}, \`config/${s.config}.json\`)`);
  const keys = [...new Set(stacks.flatMap((s) => experimentsOf(s).map((e) => experimentKey(s, e.name))))];
  const rows = keys.map((key) => {
    const cells = stacks.map((s) =>
      experimentsOf(s).some((e) => experimentKey(s, e.name) === key) ? 'yes' : '—',
    );
    return `| \`${key}\` | ${cells.join(' | ')} |`;
  });
  return [
    `| Experiment | ${columns.join(' | ')} |`,
    `| --- | ${stacks.map(() => '---').join(' | ')} |`,
    ...rows,
  ].join('\n');
}

const INTRO = `# Game day

<!-- Generated by \`npm run docs:game-day\` (scripts/game-day.ts) from the AWS FIS experiment templates of the app synthesized for config/default.json and config/lean.json. Do not edit: change lib/constructs/chaos-experiments.ts and run it again. -->

Every regional stack deploys AWS FIS experiment templates (\`ChaosExperiments\`,
lib/constructs/chaos-experiments.ts) for the failures the platform is built to survive. A
template does nothing and costs nothing until someone starts it; each one is stopped by the
composite "checkout impaired" alarm, runs as a role of its own limited to its targets, and
logs every step to an encrypted log group. This page is rendered from the synthesized
templates: what each experiment does, to what, for how long, what stops it, how to abort it,
and what must hold.

## Running a game day

1. **Before.** Tell whoever is on call and pick a quiet hour; production experiments run
   against real customers. Check that the stop alarms are OK (FIS refuses to start while one
   is in ALARM) and that no deploy (instance refresh) is running. Drive checkout traffic
   (\`npm run bench:checkout\` against the environment, or real traffic) and note the order
   count and the dead-letter queues' depth.
2. **Start** the experiment with the command of its section, and note the experiment id it
   prints.
3. **Watch** what its section lists, and the experiment's state:
   \`aws fis get-experiment --id <experiment id>\`.
4. **Abort** at any sign of customer impact the alarms have not caught yet, with the
   \`aws fis stop-experiment\` command of its section. The stop alarm does the same on its
   own.
5. **After.** Go through "What must hold". An item that does not hold is a finding: write it
   down with the experiment log (its log group is in the section), fix it, run the experiment
   again. Rehearse in a \`lean\` deployment first: it deploys the same experiments (see below).

The zonal experiments impair the first AZ of the region in config, where the database writer
is placed. The FIS Lambda extension needs up to a minute to pick a Lambda fault up.

## Where the experiments are deployed
`;

/** The whole page, before formatting. */
export function renderGameDay(stacks: readonly StackTemplate[]): string {
  const sections = stacks
    .filter((s) => s.config === GAME_DAY_CONFIGS[0])
    .flatMap((s) => experimentsOf(s).map((e) => renderExperiment(s, e)));
  if (sections.length === 0) throw new Error('The synthesized app has no experiment template');
  return [INTRO, renderDeploymentTable(stacks), '', ...sections].join('\n');
}

/**
 * Formats Markdown as the repository's Prettier configuration does, so `prettier --check`
 * passes. Runs the Prettier CLI: its API loads plugins with a dynamic import that Jest's
 * CommonJS runtime refuses.
 */
export function formatMarkdown(markdown: string, file: string = GAME_DAY_DOC): string {
  const cli = join(ROOT, 'node_modules', 'prettier', 'bin', 'prettier.cjs');
  const run = spawnSync(process.execPath, [cli, '--stdin-filepath', file], {
    cwd: ROOT,
    input: markdown,
    encoding: 'utf8',
  });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`prettier failed (exit ${run.status}): ${run.stderr}`);
  return run.stdout;
}

/** The page as `--write` writes it, from a fresh synth of every shipped config. */
export function gameDayDocument(): string {
  return formatMarkdown(renderGameDay(GAME_DAY_CONFIGS.flatMap(synthesizeShippedConfig)));
}

function main(): void {
  const page = gameDayDocument();
  if (process.argv.includes('--write')) {
    let before = '';
    try {
      before = readFileSync(GAME_DAY_DOC, 'utf8');
    } catch {
      // A first rendering.
    }
    if (page !== before) writeFileSync(GAME_DAY_DOC, page);
    process.stdout.write(
      `${relative(process.cwd(), GAME_DAY_DOC)}: ${page === before ? 'already up to date' : 'updated'}\n`,
    );
  } else {
    process.stdout.write(page);
  }
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
    process.exitCode = 1;
  }
}
