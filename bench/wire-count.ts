/**
 * A TCP proxy in front of PostgreSQL that counts round trips on the wire: it reads the
 * frontend protocol the clients send (and forwards every byte unchanged) and counts one
 * round trip per simple Query ('Q') and per Sync ('S') of the extended protocol. pg does
 * not pipeline: each query is sent as Parse/Bind/Describe/Execute/Sync (or Bind...Sync
 * for a named statement already prepared on that connection) and the client waits for
 * ReadyForQuery before sending the next, so Syncs plus Queries are exactly the waits.
 *
 * Each round trip is tagged by its statement: the `/* tag *\/` comment its SQL starts
 * with, or else its first words. Trips inside BEGIN ... COMMIT are attributed, with the
 * BEGIN and COMMIT, to their transaction, classified by its first statement.
 */
import { Server, Socket, connect, createServer } from 'node:net';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** What a statement is, for the counts: its comment tag or its first words. */
export function statementTag(sql: string): string {
  const comment = /^\s*\/\*\s*([\w.-]+)\s*\*\//.exec(sql);
  if (comment) return comment[1];
  return sql.trim().replace(/\s+/g, ' ').slice(0, 60);
}

/** Round trips seen, per group and per statement tag. */
export interface WireCounts {
  /** Round trips per statement tag ("checkout-claim", "BEGIN", ...). */
  readonly byTag: Map<string, number>;
  /** Round trips per group the classifier chose (e.g. request path vs background). */
  readonly byGroup: Map<string, number>;
  total: number;
}

/** Decides which group a round trip (or a whole transaction) belongs to, from its first statement's SQL. */
export type Classifier = (firstStatementSql: string) => string;

/** Per connection: the parser's state. */
class ConnectionReader {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  /** Named statements prepared on this connection: name -> SQL. */
  private readonly prepared = new Map<string, string>();
  /** SQL of the statement the next Sync completes. */
  private pendingSql: string | undefined;
  /** Inside BEGIN ... COMMIT: the trips so far and the first statement after BEGIN. */
  private transaction: { tags: string[]; firstSql?: string } | undefined;

  constructor(
    private readonly counts: WireCounts,
    private readonly classify: Classifier,
  ) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      if (!this.started) {
        if (this.buffer.length - offset < 8) break;
        const length = this.buffer.readInt32BE(offset);
        if (this.buffer.length - offset < length) break;
        const code = this.buffer.readInt32BE(offset + 4);
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) this.started = true;
        offset += length;
        continue;
      }
      if (this.buffer.length - offset < 5) break;
      const type = String.fromCharCode(this.buffer[offset]);
      const length = this.buffer.readInt32BE(offset + 1);
      if (this.buffer.length - offset < 1 + length) break;
      this.message(type, this.buffer.subarray(offset + 5, offset + 1 + length));
      offset += 1 + length;
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  private message(type: string, body: Buffer): void {
    switch (type) {
      case 'Q':
        return this.trip(cString(body, 0).value);
      case 'P': {
        const name = cString(body, 0);
        const sql = cString(body, name.next).value;
        if (name.value !== '') this.prepared.set(name.value, sql);
        this.pendingSql = sql;
        return;
      }
      case 'B': {
        const portal = cString(body, 0);
        const statement = cString(body, portal.next).value;
        this.pendingSql ??= this.prepared.get(statement) ?? `(statement ${statement || 'unnamed'})`;
        return;
      }
      case 'S': {
        const sql = this.pendingSql ?? '(sync)';
        this.pendingSql = undefined;
        return this.trip(sql);
      }
      default:
        return;
    }
  }

  private trip(sql: string): void {
    const tag = statementTag(sql);
    const keyword = sql.trim().split(/\s+/)[0]?.toUpperCase();
    if (keyword === 'BEGIN' || keyword === 'START') {
      this.transaction = { tags: [tag] };
      return;
    }
    if (this.transaction) {
      this.transaction.tags.push(tag);
      this.transaction.firstSql ??= sql;
      if (keyword === 'COMMIT' || keyword === 'ROLLBACK' || keyword === 'END') {
        const group = this.classify(this.transaction.firstSql);
        for (const t of this.transaction.tags) this.count(group, t);
        this.transaction = undefined;
      }
      return;
    }
    this.count(this.classify(sql), tag);
  }

  private count(group: string, tag: string): void {
    this.counts.total++;
    this.counts.byTag.set(tag, (this.counts.byTag.get(tag) ?? 0) + 1);
    this.counts.byGroup.set(group, (this.counts.byGroup.get(group) ?? 0) + 1);
  }
}

function cString(buffer: Buffer, start: number): { value: string; next: number } {
  const end = buffer.indexOf(0, start);
  return { value: buffer.toString('utf8', start, end), next: end + 1 };
}

/** The counting proxy: `start()` returns its port; `reset()` zeroes the counts. */
export class WireCounter {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  counts: WireCounts = { byTag: new Map(), byGroup: new Map(), total: 0 };

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly classify: Classifier,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const reader = new ConnectionReader(this.counts, (sql) => this.classify(sql));
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        upstream.write(chunk);
      });
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }

  /** Zeroes the counts: round trips already under way on a connection are counted when they complete. */
  reset(): void {
    const { counts } = this;
    counts.byTag.clear();
    counts.byGroup.clear();
    counts.total = 0;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
