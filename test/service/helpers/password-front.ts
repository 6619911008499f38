import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { Server, Socket, connect, createServer } from 'node:net';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Whether a cleartext password matches a PostgreSQL verifier (`SCRAM-SHA-256$...` or `md5...`). */
export function passwordMatches(verifier: string | null, user: string, password: string): boolean {
  if (!verifier) return false;
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (scram) {
    const salted = pbkdf2Sync(password, Buffer.from(scram[2], 'base64'), Number(scram[1]), 32, 'sha256');
    const storedKey = createHash('sha256')
      .update(createHmac('sha256', salted).update('Client Key').digest())
      .digest();
    return timingSafeEqual(storedKey, Buffer.from(scram[3], 'base64'));
  }
  return (
    verifier ===
    `md5${createHash('md5')
      .update(password + user)
      .digest('hex')}`
  );
}

/**
 * A password-checking front for a PostgreSQL that trusts every local connection (as
 * the test server does, so its clients are never asked for a password). Like RDS Proxy
 * with IAM auth, it asks each new connection for a cleartext password, checks it, and
 * only then hands the connection to the database; it counts the authentications.
 * Plain TCP only: it answers 'N' to a TLS request.
 */
export class PasswordFront {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Connections that presented the right password. */
  authenticated = 0;
  /** Connections that presented a wrong one. */
  rejected = 0;
  port = 0;

  constructor(
    private readonly upstream: { host: string; port: number },
    /** Decides whether `password` is right for `user`. */
    private readonly check: (user: string, password: string) => Promise<boolean>,
  ) {}

  /** Listens on a free local port, which it returns. */
  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** Drops every connection and stops listening. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  private accept(client: Socket): void {
    this.track(client);
    let buffered = Buffer.alloc(0);
    let startup: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!startup) {
        if (buffered.length < 8 || buffered.length < buffered.readInt32BE(0)) return;
        const length = buffered.readInt32BE(0);
        const code = buffered.readInt32BE(4);
        const message = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          client.write('N');
          return;
        }
        startup = Buffer.from(message);
        client.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
        return;
      }
      if (buffered.length < 5 || buffered.length < 1 + buffered.readInt32BE(1)) return;
      client.off('data', onData);
      const password = buffered.subarray(5, buffered.readInt32BE(1)).toString('utf8');
      void this.authenticate(client, startup, password);
    };
    client.on('data', onData);
  }

  private async authenticate(client: Socket, startup: Buffer, password: string): Promise<void> {
    const params = startup.subarray(8).toString('utf8').split('\0');
    const user = params[params.indexOf('user') + 1];
    if (!(await this.check(user, password))) {
      this.rejected++;
      const fields = `SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "${user}"\0\0`;
      const body = Buffer.from(fields, 'utf8');
      const header = Buffer.alloc(5);
      header.write('E', 0);
      header.writeInt32BE(body.length + 4, 1);
      client.end(Buffer.concat([header, body]));
      return;
    }
    this.authenticated++;
    const upstream = connect(this.upstream.port, this.upstream.host);
    this.track(upstream);
    upstream.write(startup);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
