import { Lazy } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as timings from './timings';

/** The most alarms an instance refresh watches (Auto Scaling's limit). */
export const MAX_REFRESH_ALARMS = 10;

/**
 * Gives the group an `AutoScalingInstanceRefresh` update policy: every launch template
 * change that CloudFormation deploys replaces the instances through a rolling instance
 * refresh that keeps 100% of the desired capacity healthy (one extra instance at a time,
 * up to 110%), skips instances already on the new template, pauses at 33%, 66% and 100%
 * for {@link timings.REFRESH_BAKE_TIME}, and fails (CloudFormation then rolls back) when
 * one of `alarms()` fires. `alarms` is read at synth, so alarms added after this call count.
 */
export function addInstanceRefresh(
  group: autoscaling.AutoScalingGroup,
  alarms: () => readonly cloudwatch.IAlarm[],
): void {
  const cfnGroup = group.node.defaultChild as autoscaling.CfnAutoScalingGroup;
  cfnGroup.cfnOptions.updatePolicy = {
    autoScalingInstanceRefresh: {
      strategy: autoscaling.InstanceRefreshStrategy.ROLLING,
      preferences: {
        minHealthyPercentage: 100,
        maxHealthyPercentage: 110,
        instanceWarmup: timings.INSTANCE_WARMUP.toSeconds(),
        skipMatching: true,
        checkpointPercentages: [33, 66, 100],
        checkpointDelay: timings.REFRESH_BAKE_TIME.toSeconds(),
        bakeTime: timings.REFRESH_BAKE_TIME.toSeconds(),
        alarmSpecification: {
          alarms: Lazy.list({ produce: () => alarms().map((a) => a.alarmName) }, { omitEmpty: true }),
        },
      },
    },
  };
}

/**
 * Refuses a list of refresh alarms longer than Auto Scaling accepts; the message names
 * the method that was called.
 */
export function checkRefreshAlarmCount(caller: string, count: number): void {
  if (count > MAX_REFRESH_ALARMS) {
    throw new Error(
      `${caller}: an instance refresh watches at most ${MAX_REFRESH_ALARMS} alarms, got ${count}`,
    );
  }
}
