/**
 * Requests doing work: counted from when the handler starts (the body has arrived and
 * been validated) until the handler's work has finished, whether or not its client is
 * still there. A client still sending its body is not work, and a client that hangs up
 * does not free a slot while its checkout is still reserving, paying or recording.
 */
export class InFlightWork {
  private active = 0;
  private waiters: (() => void)[] = [];

  /** @param limit - work above which new requests are shed (MAX_IN_FLIGHT) */
  constructor(readonly limit: number) {}

  /** Requests doing work now. */
  get size(): number {
    return this.active;
  }

  /** Whether no more work is admitted. */
  get full(): boolean {
    return this.active >= this.limit;
  }

  /** Takes a slot, or returns false when none is free. */
  tryEnter(): boolean {
    if (this.full) return false;
    this.active++;
    return true;
  }

  leave(): void {
    this.active--;
    if (this.active === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves when no work is in progress. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Runs work in a slot taken with tryEnter, releasing the slot when the work settles. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.leave();
    }
  }
}
