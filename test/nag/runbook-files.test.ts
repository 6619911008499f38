import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CfnResource } from 'aws-cdk-lib';
import { runbookOf } from '../../lib/nag/rules/alarm-action-runbook';
import { TemplateModel } from '../../lib/nag/template-model';
import { ROOT, buildTestApp, shippedConfig } from '../helpers/app';

const RUNBOOKS = join(ROOT, 'docs', 'runbooks');
const ALARMS = ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm'];

interface LinkedAlarm {
  readonly alarm: string;
  readonly runbook?: string;
}

/**
 * Every alarm of the shipped app for a config, with the runbook its description links, read
 * from the stacks' templates as CloudFormation receives them. The app is built, not
 * synthesized: the compliance packs' run adds nothing to what is read here.
 */
function linkedAlarms(name: 'default' | 'lean'): LinkedAlarm[] {
  const { app } = buildTestApp(shippedConfig(name));
  TemplateModel.forgetAll();
  try {
    return app.node
      .findAll()
      .filter((c): c is CfnResource => CfnResource.isCfnResource(c) && ALARMS.includes(c.cfnResourceType))
      .map((alarm) => ({
        alarm: alarm.node.path,
        runbook: runbookOf(TemplateModel.of(alarm).resourceOf(alarm).properties.AlarmDescription),
      }));
  } finally {
    TemplateModel.forgetAll();
  }
}

// The ResilientShopResilience-AlarmActionRunbook rule checks the link's form; this checks the
// files behind the links, which a template cannot show.
describe.each(['default', 'lean'] as const)('runbooks linked by the alarms of config/%s.json', (name) => {
  const alarms = linkedAlarms(name);
  const readme = readFileSync(join(RUNBOOKS, 'README.md'), 'utf8');

  test('the app has alarms, and every one links a runbook', () => {
    expect(alarms.length).toBeGreaterThan(10);
    expect(alarms.filter((a) => a.runbook === undefined)).toEqual([]);
  });

  test('every linked runbook exists in docs/runbooks/ and is listed in its README', () => {
    const runbooks = [...new Set(alarms.map((a) => a.runbook!))].sort();
    expect(runbooks.filter((r) => !existsSync(join(RUNBOOKS, `${r}.md`)))).toEqual([]);
    expect(runbooks.filter((r) => !readme.includes(`(${r}.md)`))).toEqual([]);
  });
});
