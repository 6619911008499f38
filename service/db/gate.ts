import { Pool } from 'pg';
import { CheckoutServiceError } from '../errors';

/** A new checkout would have waited longer than its budget for the database: shed it (503). */
export class DatabaseBusyError extends CheckoutServiceError {
  constructor(readonly expectedWaitMs: number) {
    super(`the database is busy: a new checkout would wait about ${Math.round(expectedWaitMs)} ms`);
  }
}

export interface DatabaseGateOptions {
  /** Most statements at once: the pool's size (a statement holds one connection). */
  readonly maxConcurrent: number;
  /**
   * Median statement time (over an interval) above which fewer statements run at once:
   * PostgreSQL is past its knee (more running than it has cores, or waiting on locks).
   */
  readonly latencyBudgetMs: number;
  /** How long a new checkout may wait for its turn before it is shed instead. */
  readonly queueBudgetMs: number;
  /**
   * Interval over which the median statement time is taken and the limit adjusted.
   *
   * @default 100
   */
  readonly intervalMs?: number;
}

interface Waiter {
  readonly admit: () => void;
  readonly since: number;
}

/** How a statement passes the gate. */
export type Admission =
  /** Work already admitted (recording a paid order's outcome, a duplicate's lookup...): waits its turn, first. */
  | 'admitted'
  /** A new checkout's first statement: shed rather than wait longer than the queue budget. */
  | 'new';

/**
 * Admission control in front of the pool: how many statements run at once, adjusted to
 * what PostgreSQL can take, with a short queue.
 *
 * - **A concurrency limit**, between 2 and the pool's size, adjusted each interval (AIMD):
 *   when the median statement time is over the latency budget, the limit drops by a
 *   fifth; when it is within budget and statements had to queue, it grows by one. A pool
 *   of 20 connections per process lets PostgreSQL run far more statements than it has
 *   cores, and then every statement (and every checkout) is slower without any more
 *   getting done; the limit keeps the number running near where throughput peaks.
 * - **A short queue**: a statement beyond the limit waits for a turn; work already
 *   admitted (a paid order's outcome) goes first. A new checkout's first statement is
 *   refused with {@link DatabaseBusyError} when it would wait longer than the queue
 *   budget (from the queue's length and the recent statement time), or once it has
 *   waited twice that: the checkout is answered 503 + Retry-After at once, with nothing
 *   written, instead of every admitted checkout waiting longer.
 *
 * Statements inside a transaction (the outbox relay) hold their connection and do not
 * pass the gate; the limit stays below the pool's size often enough to leave them room.
 */
export class DatabaseGate {
  private limitNow: number;
  private active = 0;
  private readonly admitted: Waiter[] = [];
  private readonly fresh: Waiter[] = [];
  /** Statement times in the current interval (the first 1,000). */
  private samples: number[] = [];
  private windowStart = performance.now();
  private queuedInWindow = false;
  /** Recent statement time (exponentially weighted), for the expected wait. */
  private statementMs = 5;
  private readonly intervalMs: number;

  constructor(private readonly options: DatabaseGateOptions) {
    this.limitNow = options.maxConcurrent;
    this.intervalMs = options.intervalMs ?? 100;
  }

  /** Statements allowed at once now. */
  get limit(): number {
    return this.limitNow;
  }

  /** Statements waiting for a turn. */
  get queued(): number {
    return this.admitted.length + this.fresh.length;
  }

  /** Whether a new checkout arriving now would be refused: for shedding before its body is read. */
  get busy(): boolean {
    return this.active >= this.limitNow && this.expectedWaitMs() > this.options.queueBudgetMs;
  }

  /** Runs `statement` when the gate lets it; refuses a new checkout that would wait too long. */
  async run<T>(admission: Admission, statement: () => Promise<T>): Promise<T> {
    if (this.active >= this.limitNow || this.queued > 0) {
      this.queuedInWindow = true;
      if (admission === 'new') {
        const expected = this.expectedWaitMs();
        if (expected > this.options.queueBudgetMs) throw new DatabaseBusyError(expected);
      }
      const since = performance.now();
      await new Promise<void>((admit) =>
        (admission === 'new' ? this.fresh : this.admitted).push({ admit, since }),
      );
      const waitedMs = performance.now() - since;
      // The estimate was wrong (statements slowed down meanwhile): give the turn on.
      if (admission === 'new' && waitedMs > 2 * this.options.queueBudgetMs) {
        this.release();
        throw new DatabaseBusyError(waitedMs);
      }
    } else {
      this.active++;
    }
    const start = performance.now();
    try {
      return await statement();
    } finally {
      this.observe(performance.now() - start);
      this.release();
    }
  }

  /** Expected wait of a statement queued now: the queue ahead of it, served `limit` at a time. */
  private expectedWaitMs(): number {
    return ((this.queued + 1) * this.statementMs) / this.limitNow;
  }

  /** A statement finished (or gave its turn up): the next waiter takes its place, admitted work first. */
  private release(): void {
    const next = this.active <= this.limitNow ? (this.admitted.shift() ?? this.fresh.shift()) : undefined;
    if (next) next.admit();
    else this.active--;
  }

  private observe(ms: number): void {
    this.statementMs += (ms - this.statementMs) / 16;
    const now = performance.now();
    if (this.samples.length < 1_000) this.samples.push(ms);
    if (now - this.windowStart < this.intervalMs) return;
    this.samples.sort((a, b) => a - b);
    const median = this.samples[this.samples.length >> 1];
    if (median > this.options.latencyBudgetMs) {
      this.limitNow = Math.max(2, Math.floor(this.limitNow * 0.8));
    } else if (this.queuedInWindow) {
      this.limitNow = Math.min(this.options.maxConcurrent, this.limitNow + 1);
      // A higher limit admits waiters at once.
      while (this.active < this.limitNow && this.queued > 0) {
        this.active++;
        (this.admitted.shift() ?? this.fresh.shift())!.admit();
      }
    }
    this.samples = [];
    this.queuedInWindow = false;
    this.windowStart = now;
  }
}

const gates = new WeakMap<Pool, DatabaseGate>();

/** Has the statements sent on `pool` with `execute` pass `gate`. */
export function gateStatements(pool: Pool, gate: DatabaseGate): void {
  gates.set(pool, gate);
}

/** The gate of `db`, if it has one. */
export function gateOf(db: unknown): DatabaseGate | undefined {
  return gates.get(db as Pool);
}
