import { readFileSync } from 'node:fs';
import { GAME_DAY_METADATA } from '../../lib/constructs/chaos-experiments';
import {
  GAME_DAY_CONFIGS,
  GAME_DAY_DOC,
  StackTemplate,
  experimentSeconds,
  experimentsOf,
  formatMarkdown,
  humanDuration,
  isoSeconds,
  renderExperiment,
  renderGameDay,
  runbookLink,
  synthesizeShippedConfig,
} from '../../scripts/game-day';

/** Lines that differ between two texts, for a readable failure. */
function diffLines(expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  const missing = e.filter((l) => !a.includes(l));
  const extra = a.filter((l) => !e.includes(l));
  return `Rendered, not on the page (${missing.length}):\n${missing.join('\n')}\nOn the page, not rendered (${extra.length}):\n${extra.join('\n')}`;
}

describe('docs/game-day.md', () => {
  // Built once: the shipped app for config/default.json and config/lean.json.
  let stacks: StackTemplate[];
  let rendered: string;
  beforeAll(() => {
    stacks = GAME_DAY_CONFIGS.flatMap(synthesizeShippedConfig);
    rendered = formatMarkdown(renderGameDay(stacks));
  }, 600_000);

  test('is what `npm run docs:game-day` renders from the synthesized templates', () => {
    // GIVEN the page rendered from a fresh synth WHEN compared with the committed page
    const page = readFileSync(GAME_DAY_DOC, 'utf8');
    // THEN they are the same, byte for byte
    if (page !== rendered) {
      throw new Error(
        `docs/game-day.md is stale: run \`npm run docs:game-day\` and review the diff.\n${diffLines(rendered, page)}`,
      );
    }
  });

  test('has one section per experiment template of config/default.json, and lists the lean ones', () => {
    const production = stacks.filter((s) => s.config === 'default');
    const templates = production.flatMap((s) => experimentsOf(s).map((e) => [s, e] as const));
    // Both regions of the production shape, each with its experiments.
    expect(production.map((s) => s.stackName)).toEqual(['ResilientShop-Primary', 'ResilientShop-Standby']);
    expect(templates.length).toBeGreaterThanOrEqual(10);
    const headings = rendered.split('\n').filter((l) => l.startsWith('## ') && l.includes('(ResilientShop-'));
    expect(headings).toHaveLength(templates.length);
    for (const [stack, e] of templates)
      expect(rendered).toContain(`Template \`${e.name}\` in \`${stack.stackName}\``);
    const lean = stacks.filter((s) => s.config === 'lean');
    expect(lean.length).toBe(1);
    expect(rendered).toContain(`\`${lean[0].stackName}\` (${lean[0].region}, \`config/lean.json\`)`);
  });

  test('every section gives the abort command and a runbook link for the stop alarm', () => {
    const sections = rendered.split('\n## ').filter((s) => s.includes('Template `'));
    for (const section of sections) {
      expect(section).toMatch(/aws fis stop-experiment --region [a-z0-9-]+ --id <experiment id>/);
      expect(section).toContain('[runbook](runbooks/fleet-checkout-impaired.md)');
    }
  });
});

/** A stack holding one experiment template and the alarm and log group it names. */
function stackWith(properties: Record<string, unknown>, notes: unknown = NOTES): StackTemplate {
  // `null`: a template without notes.
  return {
    config: 'default',
    stackName: 'Shop',
    region: 'us-east-1',
    account: '111111111111',
    resources: {
      Alarm: {
        Type: 'AWS::CloudWatch::CompositeAlarm',
        Properties: {
          AlarmDescription: 'Checkout impaired. Runbook: docs/runbooks/fleet-checkout-impaired.md',
        },
        Metadata: { 'aws:cdk:path': 'Shop/FleetAlarms/CheckoutImpaired/Resource' },
      },
      Logs: { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: '/aws/vendedlogs/fis/Shop' } },
      Group: {
        Type: 'AWS::AutoScaling::AutoScalingGroup',
        Properties: { AutoScalingGroupName: 'Shop-checkout' },
      },
      Experiment: {
        Type: 'AWS::FIS::ExperimentTemplate',
        Properties: {
          Tags: { Name: 'Shop-stop' },
          StopConditions: [{ Source: 'aws:cloudwatch:alarm', Value: { 'Fn::GetAtt': ['Alarm', 'Arn'] } }],
          LogConfiguration: {
            CloudWatchLogsConfiguration: { LogGroupArn: { 'Fn::GetAtt': ['Logs', 'Arn'] } },
            LogSchemaVersion: 2,
          },
          ExperimentOptions: { EmptyTargetResolutionMode: 'fail' },
          ...properties,
        },
        Metadata: notes === null ? {} : { [GAME_DAY_METADATA]: notes },
      },
    },
  };
}

const NOTES = {
  title: 'Stop instances',
  hypothesis: 'Others carry the load.',
  blastRadius: 'One AZ.',
  mustHold: ['No 5xx.'],
  watch: ['Hosts.'],
};

const STOP_ACTIONS = {
  Stop: {
    ActionId: 'aws:ec2:stop-instances',
    Description: 'Stop them',
    Parameters: { startInstancesAfterDuration: 'PT10M' },
    Targets: { Instances: 'Fleet' },
  },
};

const FLEET_TARGET = {
  Fleet: {
    ResourceType: 'aws:ec2:instance',
    ResourceTags: { 'aws:autoscaling:groupName': { Ref: 'Group' } },
    Filters: [{ Path: 'Placement.AvailabilityZone', Values: ['us-east-1a'] }],
    SelectionMode: 'ALL',
  },
};

describe('rendering one experiment', () => {
  test('resolves references: the group name for the tag, the alarm with its runbook, the log group name', () => {
    const section = renderExperiment(stackWith({ Actions: STOP_ACTIONS, Targets: FLEET_TARGET }), {
      name: 'Shop-stop',
      resource: stackWith({ Actions: STOP_ACTIONS, Targets: FLEET_TARGET }).resources.Experiment,
    });
    expect(section).toContain(
      '| `Fleet` | `aws:ec2:instance` | tag `aws:autoscaling:groupName` = `Shop-checkout`; `Placement.AvailabilityZone` in `us-east-1a` | all |',
    );
    expect(section).toContain(
      '- Checkout impaired (`FleetAlarms/CheckoutImpaired`); [runbook](runbooks/fleet-checkout-impaired.md)',
    );
    expect(section).toContain('CloudWatch Logs group `/aws/vendedlogs/fis/Shop` (schema version 2)');
    expect(section).toContain('**Duration.** 10 minutes');
    expect(section).toContain('FIS then starts the stopped instances again');
  });

  test('refuses a template without game-day notes, or with an action it cannot say how FIS rolls back', () => {
    const bare = stackWith({ Actions: STOP_ACTIONS, Targets: FLEET_TARGET }, null);
    expect(() => renderExperiment(bare, { name: 'Shop-stop', resource: bare.resources.Experiment })).toThrow(
      /has no resilient-shop:game-day Metadata/,
    );
    const odd = stackWith({ Actions: { X: { ActionId: 'aws:ecs:stop-task' } }, Targets: {} });
    expect(() => renderExperiment(odd, { name: 'Shop-stop', resource: odd.resources.Experiment })).toThrow(
      /no rollback is described for action aws:ecs:stop-task/,
    );
  });

  test('refuses a stop condition that is not an alarm of the stack', () => {
    const stack = stackWith({
      Actions: STOP_ACTIONS,
      Targets: FLEET_TARGET,
      StopConditions: [{ Source: 'aws:cloudwatch:alarm', Value: { 'Fn::GetAtt': ['Logs', 'Arn'] } }],
    });
    expect(() =>
      renderExperiment(stack, { name: 'Shop-stop', resource: stack.resources.Experiment }),
    ).toThrow(/not an alarm of the stack/);
  });

  test('a page needs at least one experiment', () => {
    expect(() => renderGameDay([{ ...stackWith({}), resources: {} }])).toThrow(/no experiment template/);
  });
});

describe('durations', () => {
  test.each([
    ['PT10M', 600],
    ['PT1H30M', 5400],
    ['PT90S', 90],
    ['PT2H', 7200],
  ])('isoSeconds(%s) = %d', (iso, seconds) => {
    expect(isoSeconds(iso)).toBe(seconds);
  });

  test('isoSeconds refuses what FIS would not take', () => {
    expect(() => isoSeconds('10M')).toThrow(/Not an ISO 8601 duration/);
    expect(() => isoSeconds('PT')).toThrow(/Not an ISO 8601 duration/);
  });

  test('an experiment lasts as long as its longest chain of actions', () => {
    // GIVEN a 5-minute wait, a 25-minute shift after it, and a 30-minute action alongside
    const actions = {
      Wait: { Parameters: { duration: 'PT5M' } },
      Shift: { Parameters: { duration: 'PT25M' }, StartAfter: ['Wait'] },
      Stop: { Parameters: { startInstancesAfterDuration: 'PT30M' } },
      Later: { Parameters: { duration: 'PT2M' }, StartAfter: ['Shift'] },
    };
    // THEN the chain wait -> shift -> later (32 min) is the longest
    expect(experimentSeconds(actions)).toBe(32 * 60);
    expect(experimentSeconds({ Failover: {} })).toBe(0);
    expect(() => experimentSeconds({ A: { StartAfter: ['B'] }, B: { StartAfter: ['A'] } })).toThrow(
      /in a cycle/,
    );
  });

  test.each([
    [45, '45 seconds'],
    [60, '1 minute'],
    [1800, '30 minutes'],
    [5400, '1 hour 30 minutes'],
  ])('humanDuration(%d) = %s', (seconds, text) => {
    expect(humanDuration(seconds)).toBe(text);
  });
});

describe('runbookLink', () => {
  test.each([
    [
      'Checkout impaired. Runbook: docs/runbooks/fleet-checkout-impaired.md',
      'runbooks/fleet-checkout-impaired.md',
    ],
    ['X. Runbook: https://example.com/runbooks/x.md', 'https://example.com/runbooks/x.md'],
    ['No runbook here', undefined],
  ])('%s -> %s', (description, link) => {
    expect(runbookLink(description)).toBe(link);
  });
});
