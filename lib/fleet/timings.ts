import { Duration } from 'aws-cdk-lib';

/**
 * The numbers that decide how fast the fleet notices a failure, how it drains an
 * instance, and how long a new instance may take to become ready. They depend on each
 * other, so they live in one place; docs/fleet.md walks through the same arithmetic.
 *
 * Detection: the target group checks `/health/ready` every {@link HEALTH_CHECK_INTERVAL}
 * and calls a target unhealthy after {@link UNHEALTHY_THRESHOLD} failures in a row, so a
 * dead or unready instance stops getting new requests 20-30 s after it fails (two
 * intervals, plus up to one more for the first failing check to start; a hung instance
 * also spends the {@link HEALTH_CHECK_TIMEOUT} per check).
 *
 * Drain: on scale-in or replacement the load balancer deregisters the instance first and
 * keeps in-flight requests going for the deregistration delay; only then does Auto
 * Scaling terminate it, and systemd sends SIGTERM. The same SIGTERM arrives without a
 * deregistration when systemd restarts the service on its own, so the service first
 * fails readiness for {@link SERVICE_SHUTDOWN_DELAY} (long enough for the load balancer
 * to see it: the detection time above), then closes its listener and finishes what is in
 * flight within {@link SERVICE_DRAIN_TIMEOUT}. The deregistration delay equals that whole
 * budget, and systemd's stop timeout is above it.
 */

/** Time between two health checks of one target (the ALB allows 5-300 s). */
export const HEALTH_CHECK_INTERVAL = Duration.seconds(10);

/**
 * How long one health check may take. `/health/ready` answers from memory and one
 * `SELECT 1` (its pool waits at most DB_CONNECT_TIMEOUT_MS, 1 s), so 5 s only fails an
 * instance that is truly stuck; it must stay below the interval.
 */
export const HEALTH_CHECK_TIMEOUT = Duration.seconds(5);

/** Consecutive failed checks that take a target out of rotation (2 is the ALB's minimum). */
export const UNHEALTHY_THRESHOLD = 2;

/**
 * Consecutive passing checks that put a target (back) into rotation. A new instance is
 * already ready when it registers (the launch lifecycle hook waits for `/health/ready`),
 * so the minimum of 2 only guards against a flapping instance.
 */
export const HEALTHY_THRESHOLD = 2;

/** Worst time from an instance failing to the load balancer stopping new requests to it. */
export const DETECTION_TIME = Duration.seconds(HEALTH_CHECK_INTERVAL.toSeconds() * (UNHEALTHY_THRESHOLD + 1));

/**
 * `SHUTDOWN_DELAY_MS` of the service on the fleet: after SIGTERM, readiness answers 503
 * for this long before the listener closes, so that a restart systemd starts on its own
 * (no deregistration first) is seen by the load balancer before connections are refused:
 * {@link UNHEALTHY_THRESHOLD} failed checks take at most 20 s.
 */
export const SERVICE_SHUTDOWN_DELAY = Duration.seconds(
  HEALTH_CHECK_INTERVAL.toSeconds() * UNHEALTHY_THRESHOLD,
);

/**
 * `DRAIN_TIMEOUT_MS` of the service on the fleet: its bound on everything shutdown does
 * once the listener has closed (in-flight requests, the last outbox flush, closing the
 * pool). The longest request is a checkout that waits on a duplicate (IDEMPOTENCY_WAIT_MS,
 * 15 s) or pays through every retry (3 x 2 s + 2 x 1 s backoff = 8 s); 25 s, the service's
 * own default, covers both with room for the flush.
 */
export const SERVICE_DRAIN_TIMEOUT = Duration.seconds(25);

/** The service's whole shutdown budget: readiness failing, then draining. */
export const SERVICE_STOP_BUDGET = Duration.seconds(
  SERVICE_SHUTDOWN_DELAY.toSeconds() + SERVICE_DRAIN_TIMEOUT.toSeconds(),
);

/**
 * How long the load balancer lets a deregistering target finish its requests. It equals
 * the service's stop budget, so nothing the instance accepted is cut off before the
 * service itself would give up; the ALB completes the deregistration earlier when the
 * last request finishes.
 */
export const DEREGISTRATION_DELAY = SERVICE_STOP_BUDGET;

/**
 * systemd's `TimeoutStopSec`: SIGKILL only if the service overruns its own budget by
 * 15 s (worker processes exiting, the pool's last round trip). Above the budget so a
 * service that drains as designed is never killed mid-request.
 */
export const SERVICE_STOP_TIMEOUT = Duration.seconds(SERVICE_STOP_BUDGET.toSeconds() + 15);

/**
 * How long a new instance may stay in `Pending:Wait` before Auto Scaling gives up on it
 * (the launch lifecycle hook's heartbeat timeout; the hook's default result is ABANDON).
 * A boot takes about 2-3 minutes: OS boot, `dnf install` of Node.js 22 and the
 * CloudWatch agent from the regional repository mirror, the bundle from S3, service
 * start. 10 minutes leaves room for a slow mirror without keeping a broken instance long.
 */
export const LAUNCH_TIMEOUT = Duration.minutes(10);

/**
 * When the boot script itself gives up waiting for readiness (seconds since it started)
 * and abandons the launch: a minute before the hook would, so the reason is in the log.
 */
export const READY_DEADLINE = Duration.seconds(LAUNCH_TIMEOUT.toSeconds() - 60);

/**
 * The Auto Scaling health check grace period. The launch hook completes only once the
 * service answers `/health/ready`, and the grace period starts after the hook, at
 * InService; what is left to cover is registration with the target group and the first
 * {@link HEALTHY_THRESHOLD} checks (about 20-30 s). 90 s is three times that.
 */
export const HEALTH_CHECK_GRACE = Duration.seconds(90);

/**
 * Default instance warm-up: how long after InService an instance's metrics are left out
 * of target tracking, and how long an instance refresh waits before replacing the next
 * instance. The instance is ready at InService; 60 s lets its CPU settle after the
 * JIT warms up and lets it pass its first health checks.
 */
export const INSTANCE_WARMUP = Duration.seconds(60);

/**
 * How long an instance refresh pauses at each checkpoint, and waits after its last
 * replacement before CloudFormation calls the update done: longer than the slowest alarm
 * it watches needs to fire (5 one-minute periods) plus a minute of metric delay.
 */
export const REFRESH_BAKE_TIME = Duration.minutes(6);
