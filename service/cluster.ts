/** What the supervisor needs of a worker process (node:cluster's `Worker` has it). */
export interface WorkerProcess {
  readonly process: { readonly pid?: number; kill(signal?: NodeJS.Signals): boolean };
  once(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
}

/** Exit code of a configuration error (EX_CONFIG): restarting cannot help. */
export const EXIT_CONFIG = 78;

export interface SupervisorOptions {
  /** Worker processes to keep running. */
  readonly processes: number;
  /** Starts one worker (`cluster.fork` in production). */
  readonly fork: () => WorkerProcess;
  /**
   * After forwarding SIGTERM, how long workers have to exit before they are killed: their
   * own shutdown budget (SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS) and a margin.
   */
  readonly stopTimeoutMs: number;
  /** Ends the primary (`process.exit` in production). */
  readonly exit: (code: number) => void;
  readonly logger: {
    info(fields: object, message: string): void;
    warn(fields: object, message: string): void;
    error(fields: object, message: string): void;
  };
  /**
   * A worker that dies within this time of starting counts as a crash loop: each
   * restart in a row waits twice as long (from 100 ms, up to 10 s).
   *
   * @default 10_000
   */
  readonly stableAfterMs?: number;
}

/**
 * The primary of `SERVICE_PROCESSES` workers (node:cluster; they share the listening
 * port). It restarts a worker that dies, backing off while they die young, except one
 * that exits 78 (a configuration error: every restart would fail alike), after which it
 * stops the others and exits 78 too. On stop() it forwards SIGTERM and exits once every
 * worker has exited: 0 if all of them exited 0, 1 otherwise (1 as well, after killing
 * them, if they outlast their shutdown budget).
 */
export class Supervisor {
  private readonly workers = new Map<WorkerProcess, number>();
  private readonly codes: (number | null)[] = [];
  private stopping = false;
  private exitCode = 0;
  private crashesInARow = 0;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly restarts = new Set<NodeJS.Timeout>();

  constructor(private readonly options: SupervisorOptions) {}

  start(): void {
    for (let i = 0; i < this.options.processes; i++) this.spawn();
  }

  /** Forwards SIGTERM to every worker; the primary exits once they all have. */
  stop(reason: string, exitCode = 0): void {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = exitCode;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    this.options.logger.info({ reason, workers: this.workers.size }, 'stopping workers');
    for (const worker of this.workers.keys()) worker.process.kill('SIGTERM');
    this.killTimer = setTimeout(() => {
      this.options.logger.error(
        { stopTimeoutMs: this.options.stopTimeoutMs, left: this.workers.size },
        'workers outlasted their shutdown budget: killing them',
      );
      for (const worker of this.workers.keys()) worker.process.kill('SIGKILL');
      this.options.exit(1);
    }, this.options.stopTimeoutMs);
    this.killTimer.unref?.();
    this.exitIfDone();
  }

  private spawn(): void {
    const worker = this.options.fork();
    this.workers.set(worker, Date.now());
    worker.once('exit', (code, signal) => this.onExit(worker, code, signal));
  }

  private onExit(worker: WorkerProcess, code: number | null, signal: string | null): void {
    const startedAt = this.workers.get(worker) ?? Date.now();
    this.workers.delete(worker);
    const pid = worker.process.pid;
    if (this.stopping) {
      this.codes.push(signal ? null : code);
      return this.exitIfDone();
    }
    if (code === EXIT_CONFIG) {
      this.options.logger.error({ pid }, 'a worker found the configuration invalid (exit 78): stopping');
      return this.stop('configuration error in a worker', EXIT_CONFIG);
    }
    const stableAfterMs = this.options.stableAfterMs ?? 10_000;
    this.crashesInARow = Date.now() - startedAt < stableAfterMs ? this.crashesInARow + 1 : 0;
    const delayMs = this.crashesInARow === 0 ? 0 : Math.min(10_000, 100 * 2 ** (this.crashesInARow - 1));
    this.options.logger.warn({ pid, code, signal, restartInMs: delayMs }, 'worker died: starting another');
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      this.spawn();
    }, delayMs);
    this.restarts.add(timer);
  }

  private exitIfDone(): void {
    if (!this.stopping || this.workers.size > 0) return;
    clearTimeout(this.killTimer);
    const clean = this.codes.every((c) => c === 0);
    this.options.exit(this.exitCode !== 0 ? this.exitCode : clean ? 0 : 1);
  }
}
