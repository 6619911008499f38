import { ChildProcess, spawn } from 'node:child_process';
import { OFFLINE_AWS_ENV } from './offline-aws-env';
import { freePort } from './ports';
import { requireTool } from './tools';

export { freePort };

/** Whether moto_server is installed: skipped with a message, or an error under CI=true. */
export function motoAvailable(purpose: string): boolean {
  return requireTool('moto_server', `${purpose} (pip install "moto[server]")`, ['--help']);
}

/**
 * A moto_server on 127.0.0.1 for one test file (DynamoDB, SQS, CloudWatch, ...). Clients
 * get `clientConfig` (its endpoint, the offline region and test credentials): real SDK
 * calls over HTTP, no client mocks.
 */
export class MotoServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
  ) {}

  /** What an AWS SDK v3 client needs to talk to this server. */
  get clientConfig(): {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  } {
    return {
      endpoint: this.endpoint,
      region: OFFLINE_AWS_ENV.AWS_REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
  }

  static async start(): Promise<MotoServer> {
    const port = await freePort();
    const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const response = await fetch(`${endpoint}/moto-api/`);
        if (response.status < 500) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not start on ${endpoint} within 20 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return new MotoServer(child, endpoint);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
