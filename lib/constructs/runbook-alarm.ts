import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';

/** Context key: where runbooks live, for alarm descriptions (e.g. your repository's URL). */
export const RUNBOOK_BASE_CONTEXT = 'resilient-shop:runbookBaseUrl';

/** What {@link runbookAlarm} needs beyond the metric. */
export interface RunbookAlarmOptions {
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  /** One line: what is wrong when it fires. */
  readonly summary: string;
  /** @default GREATER_THAN_THRESHOLD */
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  /** @default NOT_BREACHING - no data means no traffic, not a failure */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
}

/**
 * An alarm whose description links its runbook `docs/runbooks/<runbook>.md` (prefixed
 * by the `resilient-shop:runbookBaseUrl` context value when set). It has no actions of
 * its own: the construct that owns it adds the alarm topic (see `Database`).
 */
export function runbookAlarm(
  scope: Construct,
  id: string,
  runbook: string,
  options: RunbookAlarmOptions,
): cloudwatch.Alarm {
  const base = (scope.node.tryGetContext(RUNBOOK_BASE_CONTEXT) as string | undefined) ?? 'docs/runbooks';
  return new cloudwatch.Alarm(scope, id, {
    metric: options.metric,
    threshold: options.threshold,
    evaluationPeriods: options.evaluationPeriods,
    datapointsToAlarm: options.evaluationPeriods,
    comparisonOperator: options.comparisonOperator ?? cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    treatMissingData: options.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: `${options.summary}. Runbook: ${base.replace(/\/$/, '')}/${runbook}.md`,
  });
}
