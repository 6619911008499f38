/**
 * Moves the messages of a dead-letter queue back for another try, with SQS's message move
 * task (the API behind the console's "Start DLQ redrive").
 *
 *   npm run redrive -- <queue> [--dry-run] [--peek N] [--rate N] [--no-wait] [--region R]
 *
 * `<queue>` is a name, URL or ARN: either the source queue (`resilient-shop-order-events`:
 * its DLQ is read from its redrive policy, and messages move back to it) or the DLQ itself
 * (`...-dlq`: each message moves back to the queue it came from).
 *
 * - `--dry-run` changes nothing: it prints the DLQ's counts and peeks at up to `--peek`
 *   (default 10) messages, printing ids, receive counts and the event's type and order id,
 *   never the body (a payment-retry body carries a payment token).
 * - Otherwise it refuses when a move task is already running for the DLQ, starts one
 *   (at `--rate` messages per second, SQS's own pace when omitted) and follows it until
 *   it completes, unless `--no-wait`.
 *
 * The caller needs what `ResilientQueue.grantRedrive` grants: the move task runs with the
 * caller's permissions (receive and delete on the DLQ, send to the destination, the key).
 * Credentials and region come from the usual AWS environment (`AWS_PROFILE`,
 * `AWS_REGION`), or `--region`.
 */
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';

/** What `npm run redrive` was asked to do. */
export interface RedriveOptions {
  readonly queue: string;
  readonly dryRun: boolean;
  /** Messages to peek at in a dry run (0-10). */
  readonly peek: number;
  /** MaxNumberOfMessagesPerSecond of the move task (1-500). */
  readonly rate?: number;
  /** Follow the task until it ends. */
  readonly wait: boolean;
  readonly region?: string;
  /** How often to poll the task while waiting. */
  readonly pollMs: number;
}

/** The part of SQSClient the script uses: a real client, or a stub in tests. */
export type SqsSender = Pick<SQSClient, 'send'>;

/** What the run found and did. */
export interface RedriveReport {
  readonly deadLetterQueueArn: string;
  /** The destination; undefined when messages go back to the queues they came from. */
  readonly destinationArn?: string;
  readonly visible: number;
  readonly inFlight: number;
  /** The final task, when one was started and followed. */
  readonly task?: ListMessageMoveTasksResultEntry;
}

/** A problem the operator must fix; printed without a stack trace. */
export class RedriveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedriveError';
  }
}

const USAGE =
  'usage: npm run redrive -- <queue name, URL or ARN> [--dry-run] [--peek N] [--rate N] [--no-wait] [--region R]';

/**
 * Parses the command line (the arguments after `--`).
 *
 * @throws RedriveError naming the bad argument, with the usage line
 */
export function parseArgs(argv: readonly string[]): RedriveOptions {
  let queue: string | undefined;
  let dryRun = false;
  let peek = 10;
  let rate: number | undefined;
  let wait = true;
  let region: string | undefined;
  const number = (flag: string, value: string | undefined, min: number, max: number): number => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min || n > max) {
      throw new RedriveError(
        `${flag} needs a whole number from ${min} to ${max}, got ${value ?? 'nothing'}\n${USAGE}`,
      );
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dry-run') dryRun = true;
    else if (arg === '--no-wait') wait = false;
    else if (arg === '--peek') peek = number('--peek', argv[++i], 0, 10);
    else if (arg === '--rate') rate = number('--rate', argv[++i], 1, 500);
    else if (arg === '--region') region = argv[++i];
    else if (arg.startsWith('-')) throw new RedriveError(`unknown option ${arg}\n${USAGE}`);
    else if (queue === undefined) queue = arg;
    else throw new RedriveError(`one queue at a time, got ${queue} and ${arg}\n${USAGE}`);
  }
  if (!queue) throw new RedriveError(`name the queue to redrive\n${USAGE}`);
  return { queue, dryRun, peek, rate, wait, region, pollMs: 5_000 };
}

const ARN = /^arn:[^:]+:sqs:([^:]+):(\d{12}):(.+)$/;

async function queueUrlOf(sqs: SqsSender, queue: string): Promise<string> {
  if (/^https?:\/\//.test(queue)) return queue;
  const arn = ARN.exec(queue);
  const { QueueUrl } = await sqs.send(
    new GetQueueUrlCommand(
      arn ? { QueueName: arn[3], QueueOwnerAWSAccountId: arn[2] } : { QueueName: queue },
    ),
  );
  if (!QueueUrl) throw new RedriveError(`no queue named ${queue}`);
  return QueueUrl;
}

async function attributesOf(sqs: SqsSender, url: string): Promise<Record<string, string>> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'QueueArn',
        'RedrivePolicy',
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
      ],
    }),
  );
  return Attributes;
}

/** One peeked message, without its body. */
function describe(message: Message): string {
  const attributes = message.Attributes ?? {};
  const sent = attributes.SentTimestamp ? new Date(Number(attributes.SentTimestamp)).toISOString() : '?';
  let summary: string;
  try {
    const body = JSON.parse(message.Body ?? '') as Record<string, unknown>;
    const field = (name: string) =>
      typeof body[name] === 'string' ? `${name}=${body[name] as string}` : undefined;
    summary =
      [field('type'), field('orderId'), field('eventId')].filter(Boolean).join(' ') || '(JSON, no type)';
  } catch {
    summary = `(not JSON, ${Buffer.byteLength(message.Body ?? '')} bytes)`;
  }
  return `  ${message.MessageId}  sent ${sent}  received ${attributes.ApproximateReceiveCount ?? '?'}x  ${summary}`;
}

/**
 * Runs a redrive (or a dry run) against an SQS client, printing each step with `out`.
 *
 * @throws RedriveError when the queue has no DLQ, a task is already running, or the task fails
 */
export async function redrive(
  sqs: SqsSender,
  options: RedriveOptions,
  out: (line: string) => void,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<RedriveReport> {
  const url = await queueUrlOf(sqs, options.queue);
  const given = await attributesOf(sqs, url);
  let dlqUrl = url;
  let dlq = given;
  let destinationArn: string | undefined;
  if (given.RedrivePolicy) {
    const target = (JSON.parse(given.RedrivePolicy) as { deadLetterTargetArn: string }).deadLetterTargetArn;
    destinationArn = given.QueueArn;
    dlqUrl = await queueUrlOf(sqs, target);
    dlq = await attributesOf(sqs, dlqUrl);
  } else {
    const { queueUrls = [] } = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: url }));
    if (queueUrls.length === 0) {
      throw new RedriveError(`${options.queue} has no dead-letter queue and is no queue's dead-letter queue`);
    }
  }
  const visible = Number(dlq.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(dlq.ApproximateNumberOfMessagesNotVisible ?? 0);
  const report = { deadLetterQueueArn: dlq.QueueArn, destinationArn, visible, inFlight };
  out(`dead-letter queue ${dlq.QueueArn}: about ${visible} messages waiting, ${inFlight} in flight`);
  out(`destination: ${destinationArn ?? 'each message back to the queue it came from'}`);

  if (options.dryRun) {
    if (options.peek > 0 && visible > 0) {
      // VisibilityTimeout 0: the peeked messages stay visible (nothing is hidden, nothing
      // deleted), so they are all still there to move. Receiving does add one to each
      // message's receive count, which a DLQ (it has no redrive policy) never acts on.
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: options.peek,
          VisibilityTimeout: 0,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
        }),
      );
      out(`a sample of ${Messages.length} (SQS samples some of its servers; left in place):`);
      for (const message of Messages) out(describe(message));
    }
    out('dry run: nothing moved');
    return report;
  }

  const { Results = [] } = await sqs.send(
    new ListMessageMoveTasksCommand({ SourceArn: dlq.QueueArn, MaxResults: 10 }),
  );
  const running = Results.find((t) => t.Status === 'RUNNING');
  if (running) {
    throw new RedriveError(
      `a move task is already running for ${dlq.QueueArn} (${running.ApproximateNumberOfMessagesMoved ?? 0} of ` +
        `${running.ApproximateNumberOfMessagesToMove ?? '?'} moved); wait for it, or cancel it with ` +
        `aws sqs cancel-message-move-task --task-handle ${running.TaskHandle}`,
    );
  }
  if (visible === 0) {
    out('nothing to move');
    return report;
  }
  const { TaskHandle } = await sqs.send(
    new StartMessageMoveTaskCommand({
      SourceArn: dlq.QueueArn,
      DestinationArn: destinationArn,
      MaxNumberOfMessagesPerSecond: options.rate,
    }),
  );
  out(`move task started: ${TaskHandle}`);
  if (!options.wait) return report;
  for (;;) {
    await sleep(options.pollMs);
    const { Results: tasks = [] } = await sqs.send(
      new ListMessageMoveTasksCommand({ SourceArn: dlq.QueueArn, MaxResults: 1 }),
    );
    const task = tasks[0];
    if (!task) throw new RedriveError(`the move task ${TaskHandle} is no longer listed`);
    out(
      `  ${task.Status}: ${task.ApproximateNumberOfMessagesMoved ?? 0} of ${task.ApproximateNumberOfMessagesToMove ?? '?'} moved`,
    );
    if (task.Status === 'RUNNING' || task.Status === 'CANCELLING') continue;
    if (task.Status !== 'COMPLETED') {
      throw new RedriveError(
        `the move task ended ${task.Status}${task.FailureReason ? `: ${task.FailureReason}` : ''}`,
      );
    }
    return { ...report, task };
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const sqs = new SQSClient(options.region ? { region: options.region } : {});
  try {
    await redrive(sqs, options, (line) => process.stdout.write(`${line}\n`));
  } finally {
    sqs.destroy();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `${err instanceof RedriveError ? err.message : String((err as Error).stack ?? err)}\n`,
    );
    process.exitCode = 1;
  });
}
