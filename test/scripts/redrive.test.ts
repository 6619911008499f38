import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { RedriveError, RedriveOptions, SqsSender, parseArgs, redrive } from '../../scripts/redrive';
import { MotoServer, motoAvailable } from '../helpers/moto-server';

const SOURCE_URL = 'https://sqs.us-east-1.amazonaws.com/111111111111/shop-order-events';
const SOURCE_ARN = 'arn:aws:sqs:us-east-1:111111111111:shop-order-events';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/111111111111/shop-order-events-dlq';
const DLQ_ARN = 'arn:aws:sqs:us-east-1:111111111111:shop-order-events-dlq';

/** One recorded call: the command's name and its input. */
type Call = [string, Record<string, unknown>];

/**
 * An SQS client stub that records every command and answers from a script: a source queue
 * with a redrive policy to its DLQ holding 3 messages, and move tasks as `tasks` says.
 */
function stubSqs(tasks: { listed: Record<string, unknown>[][] } = { listed: [[], []] }) {
  const calls: Call[] = [];
  let listings = 0;
  const sender: SqsSender = {
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push([name, command.input]);
      switch (name) {
        case 'GetQueueUrl':
          return { QueueUrl: command.input.QueueName === 'shop-order-events' ? SOURCE_URL : DLQ_URL };
        case 'GetQueueAttributes':
          return command.input.QueueUrl === SOURCE_URL
            ? {
                Attributes: {
                  QueueArn: SOURCE_ARN,
                  RedrivePolicy: JSON.stringify({ deadLetterTargetArn: DLQ_ARN, maxReceiveCount: 5 }),
                  ApproximateNumberOfMessages: '0',
                  ApproximateNumberOfMessagesNotVisible: '0',
                },
              }
            : {
                Attributes: {
                  QueueArn: DLQ_ARN,
                  ApproximateNumberOfMessages: '3',
                  ApproximateNumberOfMessagesNotVisible: '0',
                },
              };
        case 'ListDeadLetterSourceQueues':
          return { queueUrls: [SOURCE_URL] };
        case 'ListMessageMoveTasks':
          return { Results: tasks.listed[Math.min(listings++, tasks.listed.length - 1)] };
        case 'StartMessageMoveTask':
          return { TaskHandle: 'task-1' };
        case 'ReceiveMessage':
          return {
            Messages: [
              {
                MessageId: 'm-1',
                Body: JSON.stringify({ type: 'PaymentDeferred', orderId: 'o-1', paymentToken: 'tok_secret' }),
                Attributes: { SentTimestamp: '1790000000000', ApproximateReceiveCount: '5' },
              },
              { MessageId: 'm-2', Body: 'garbage', Attributes: {} },
            ],
          };
        default:
          throw new Error(`unexpected ${name}`);
      }
    }) as unknown as SqsSender['send'],
  };
  return { sender, calls };
}

const options = (overrides: Partial<RedriveOptions> = {}): RedriveOptions => ({
  ...parseArgs(['shop-order-events']),
  pollMs: 0,
  ...overrides,
});

describe('npm run redrive (stubbed SQS client)', () => {
  test('moves the DLQ back to its source queue with a message move task, and follows it to the end', async () => {
    // GIVEN a source queue whose DLQ holds 3 messages, and no task running
    const { sender, calls } = stubSqs({
      listed: [
        [{ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 7 }],
        [
          {
            Status: 'RUNNING',
            TaskHandle: 'task-1',
            ApproximateNumberOfMessagesMoved: 1,
            ApproximateNumberOfMessagesToMove: 3,
          },
        ],
        [{ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 3 }],
      ],
    });
    const lines: string[] = [];
    // WHEN redriven by the source queue's name at 10 messages per second
    const report = await redrive(sender, options({ rate: 10 }), (l) => lines.push(l));
    // THEN the task moves from the DLQ to the source queue, and the script waits for COMPLETED
    expect(calls.map(([name]) => name)).toEqual([
      'GetQueueUrl',
      'GetQueueAttributes',
      'GetQueueUrl',
      'GetQueueAttributes',
      'ListMessageMoveTasks',
      'StartMessageMoveTask',
      'ListMessageMoveTasks',
      'ListMessageMoveTasks',
    ]);
    expect(calls[2][1]).toEqual({
      QueueName: 'shop-order-events-dlq',
      QueueOwnerAWSAccountId: '111111111111',
    });
    expect(calls[5][1]).toEqual({
      SourceArn: DLQ_ARN,
      DestinationArn: SOURCE_ARN,
      MaxNumberOfMessagesPerSecond: 10,
    });
    expect(report).toMatchObject({
      deadLetterQueueArn: DLQ_ARN,
      destinationArn: SOURCE_ARN,
      visible: 3,
      task: { Status: 'COMPLETED' },
    });
    expect(lines).toContain('  RUNNING: 1 of 3 moved');
    expect(lines).toContain('  COMPLETED: 3 of 3 moved');
  });

  test('given the DLQ itself, moves each message back to the queue it came from (no DestinationArn)', async () => {
    const { sender, calls } = stubSqs({ listed: [[], [{ Status: 'COMPLETED' }]] });
    await redrive(sender, options({ queue: DLQ_URL }), () => undefined);
    expect(calls.map(([name]) => name)).toEqual([
      'GetQueueAttributes',
      'ListDeadLetterSourceQueues',
      'ListMessageMoveTasks',
      'StartMessageMoveTask',
      'ListMessageMoveTasks',
    ]);
    expect(calls[3][1]).toEqual({
      SourceArn: DLQ_ARN,
      DestinationArn: undefined,
      MaxNumberOfMessagesPerSecond: undefined,
    });
  });

  test('refuses to start while a move task is running, and says how to cancel it', async () => {
    const { sender, calls } = stubSqs({
      listed: [
        [
          {
            Status: 'RUNNING',
            TaskHandle: 'task-0',
            ApproximateNumberOfMessagesMoved: 2,
            ApproximateNumberOfMessagesToMove: 9,
          },
        ],
      ],
    });
    await expect(redrive(sender, options(), () => undefined)).rejects.toThrow(
      /already running .* \(2 of 9 moved\).*cancel-message-move-task --task-handle task-0/,
    );
    expect(calls.map(([name]) => name)).not.toContain('StartMessageMoveTask');
  });

  test('a task that ends FAILED fails the command with its reason', async () => {
    const { sender } = stubSqs({
      listed: [[], [{ Status: 'FAILED', FailureReason: 'AccessDenied on kms:Decrypt' }]],
    });
    await expect(redrive(sender, options(), () => undefined)).rejects.toThrow(
      new RedriveError('the move task ended FAILED: AccessDenied on kms:Decrypt'),
    );
  });

  test('a dry run counts and peeks without moving, hiding or deleting anything, and prints no body', async () => {
    // GIVEN the same queues
    const { sender, calls } = stubSqs();
    const lines: string[] = [];
    // WHEN run with --dry-run
    await redrive(sender, options({ dryRun: true, peek: 5 }), (l) => lines.push(l));
    // THEN it only reads: the peek leaves messages visible (VisibilityTimeout 0)
    expect(calls.map(([name]) => name)).toEqual([
      'GetQueueUrl',
      'GetQueueAttributes',
      'GetQueueUrl',
      'GetQueueAttributes',
      'ReceiveMessage',
    ]);
    expect(calls[4][1]).toMatchObject({ QueueUrl: DLQ_URL, MaxNumberOfMessages: 5, VisibilityTimeout: 0 });
    // ...and prints ids, receive counts and the event's type and order id, never the payment token
    expect(lines).toEqual([
      `dead-letter queue ${DLQ_ARN}: about 3 messages waiting, 0 in flight`,
      `destination: ${SOURCE_ARN}`,
      'a sample of 2 (SQS samples some of its servers; left in place):',
      '  m-1  sent 2026-09-21T14:13:20.000Z  received 5x  type=PaymentDeferred orderId=o-1',
      '  m-2  sent ?  received ?x  (not JSON, 7 bytes)',
      'dry run: nothing moved',
    ]);
    expect(lines.join('\n')).not.toContain('tok_secret');
  });
});

describe('parseArgs', () => {
  test('reads the queue and the flags', () => {
    expect(
      parseArgs(['q', '--dry-run', '--peek', '3', '--rate', '50', '--no-wait', '--region', 'eu-west-1']),
    ).toEqual({
      queue: 'q',
      dryRun: true,
      peek: 3,
      rate: 50,
      wait: false,
      region: 'eu-west-1',
      pollMs: 5_000,
    });
  });

  test.each([
    [[], /name the queue to redrive/],
    [['q', '--rate', '0'], /--rate needs a whole number from 1 to 500, got 0/],
    [['q', '--peek', '11'], /--peek needs a whole number from 0 to 10, got 11/],
    [['q', '--force'], /unknown option --force/],
    [['a', 'b'], /one queue at a time, got a and b/],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

const hasMoto = motoAvailable('the redrive dry run is tested against SQS on moto_server');

(hasMoto ? describe : describe.skip)('npm run redrive -- --dry-run against SQS on moto_server', () => {
  let moto: MotoServer;
  let sqs: SQSClient;

  beforeAll(async () => {
    moto = await MotoServer.start();
    sqs = new SQSClient(moto.clientConfig);
  });

  afterAll(async () => {
    sqs?.destroy();
    await moto?.stop();
  });

  test('counts the DLQ and peeks at it, and every message is still there to move afterwards', async () => {
    // GIVEN a queue whose DLQ holds three dead letters
    const { QueueUrl: dlqUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: 'shop-payment-retry-dlq' }),
    );
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    );
    await sqs.send(
      new CreateQueueCommand({
        QueueName: 'shop-payment-retry',
        Attributes: {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 5 }),
        },
      }),
    );
    for (const orderId of ['o-1', 'o-2', 'o-3']) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: dlqUrl,
          MessageBody: JSON.stringify({ type: 'PaymentDeferred', orderId, paymentToken: 'tok_secret' }),
        }),
      );
    }
    // WHEN a dry run is made for the source queue
    const lines: string[] = [];
    const report = await redrive(sqs, options({ queue: 'shop-payment-retry', dryRun: true }), (l) =>
      lines.push(l),
    );
    // THEN it reports the DLQ and its three messages, peeked without their bodies...
    expect(report).toMatchObject({ deadLetterQueueArn: Attributes!.QueueArn, visible: 3 });
    expect(lines[0]).toBe(`dead-letter queue ${Attributes!.QueueArn}: about 3 messages waiting, 0 in flight`);
    const peeked = lines.filter((l) => l.includes('type=PaymentDeferred'));
    expect(peeked.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('tok_secret');
    // ...and all three are still visible in the DLQ: nothing hidden, nothing deleted
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(Messages.map((m) => JSON.parse(m.Body!).orderId).sort()).toEqual(['o-1', 'o-2', 'o-3']);
  });

  test('a queue that has no DLQ and is none is refused by name', async () => {
    await sqs.send(new CreateQueueCommand({ QueueName: 'lonely' }));
    await expect(redrive(sqs, options({ queue: 'lonely', dryRun: true }), () => undefined)).rejects.toThrow(
      "lonely has no dead-letter queue and is no queue's dead-letter queue",
    );
  });
});
