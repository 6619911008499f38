import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { OFFLINE_AWS_ENV } from '../../helpers/offline-aws-env';

/** Whether moto_server is installed (skip with a message, or fail under CI=true). */
export function motoAvailable(): boolean {
  const probe = spawnSync('moto_server', ['--help'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return true;
  const message = 'moto_server is not installed: the outbox tests publish to SQS on a local AWS emulator';
  if (process.env.CI === 'true')
    throw new Error(`${message}; CI=true requires it (pip install "moto[server]")`);
  process.stderr.write(`SKIPPED: ${message}. Install it with pip install "moto[server]".\n`);
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A moto_server on 127.0.0.1 with two queues, for one test file. */
export class MotoSqs {
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
    readonly client: SQSClient,
  ) {}

  static async start(): Promise<MotoSqs> {
    const port = await freePort();
    const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new SQSClient({
      endpoint,
      region: OFFLINE_AWS_ENV.AWS_REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const response = await fetch(`${endpoint}/moto-api/`);
        if (response.status < 500) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not start on ${endpoint} within 20 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return new MotoSqs(child, endpoint, client);
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
    this.child.kill('SIGTERM');
    await new Promise((resolve) => this.child.once('exit', resolve));
  }
}
