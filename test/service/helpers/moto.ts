import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { MotoServer, motoAvailable as sharedMotoAvailable } from '../../helpers/moto-server';

/** Whether moto_server is installed (skip with a message, or fail under CI=true). */
export function motoAvailable(): boolean {
  return sharedMotoAvailable('the outbox tests publish to SQS on a local AWS emulator');
}

/** A moto_server on 127.0.0.1 with an SQS client, for one test file. */
export class MotoSqs {
  private constructor(
    private readonly server: MotoServer,
    readonly client: SQSClient,
  ) {}

  /** The server's endpoint, for AWS_ENDPOINT_URL. */
  get endpoint(): string {
    return this.server.endpoint;
  }

  static async start(): Promise<MotoSqs> {
    const server = await MotoServer.start();
    return new MotoSqs(server, new SQSClient(server.clientConfig));
  }

  async createQueue(name: string): Promise<string> {
    const { QueueUrl } = await this.client.send(new CreateQueueCommand({ QueueName: name }));
    return QueueUrl!;
  }

  /** Drains a queue: every message body currently in it, parsed. */
  async drain(queueUrl: string): Promise<Record<string, unknown>[]> {
    const bodies: Record<string, unknown>[] = [];
    for (;;) {
      const { Messages = [] } = await this.client.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return bodies;
      for (const m of Messages) bodies.push(JSON.parse(m.Body!) as Record<string, unknown>);
      await this.client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
  }

  async stop(): Promise<void> {
    this.client.destroy();
    await this.server.stop();
  }
}
