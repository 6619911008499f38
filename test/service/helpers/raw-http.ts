import { Agent, request } from 'node:http';
import { Socket, connect } from 'node:net';

/** How a raw connection ended. */
export interface RawOutcome {
  /** The status line's code, when the server answered at all. */
  readonly status?: number;
  /** Milliseconds from connecting until the connection closed (or the cap was hit). */
  readonly closedAfterMs: number;
  /** Whether the server closed it (false: the client gave up at its cap). */
  readonly closedByServer: boolean;
}

/** A connection to the service under test whose bytes the test writes itself. */
export class RawConnection {
  readonly socket: Socket;
  private readonly openedAt = Date.now();
  private received = '';
  private byServer = true;
  private readonly ended: Promise<RawOutcome>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => (this.received += chunk));
    this.socket.on('error', () => undefined);
    this.ended = new Promise((resolve) =>
      this.socket.once('close', () => {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(this.received)?.[1];
        resolve({
          status: status ? Number(status) : undefined,
          closedAfterMs: Date.now() - this.openedAt,
          closedByServer: this.byServer,
        });
      }),
    );
  }

  async connected(): Promise<this> {
    if (this.socket.connecting) await new Promise((resolve) => this.socket.once('connect', resolve));
    return this;
  }

  write(text: string): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /**
   * Writes one byte of `text` every `intervalMs`, cycling through it, until the
   * connection closes: a client too slow to ever finish its request.
   */
  trickle(text: string, intervalMs: number): void {
    let i = 0;
    const timer = setInterval(() => {
      if (this.socket.destroyed) return clearInterval(timer);
      this.socket.write(text[i++ % text.length]);
    }, intervalMs);
    this.socket.once('close', () => clearInterval(timer));
  }

  /** Resolves when the connection closes, or destroys it after `capMs` (closedByServer false). */
  async closed(capMs: number): Promise<RawOutcome> {
    const cap = setTimeout(() => {
      this.byServer = false;
      this.socket.destroy();
    }, capMs);
    try {
      return await this.ended;
    } finally {
      clearTimeout(cap);
    }
  }

  destroy(): void {
    this.byServer = false;
    this.socket.destroy();
  }
}

/** A GET or POST through a given agent (keep-alive or not), with the response headers. */
export async function httpCall(
  url: string,
  options: { method?: string; agent?: Agent; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: options.agent,
        headers: {
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
          ...options.headers,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
