/**
 * What the worker benches (bench/workers.ts, bench/payment-retry.ts) share: the figures'
 * formats, a bundle built exactly as its construct builds it, the report of a deployed
 * bundle, and the handler's own time per record. Prints figures, asserts nothing.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { App, Stack } from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { WorkerFunction, WorkerFunctionProps } from '../lib/constructs/worker-function';
import { newApp } from '../test/helpers/app';
import { lambdaContext, sqsEvent, sqsRecord } from '../test/helpers/lambda';

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
export const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
export const ms = (value: number) => `${value.toFixed(1)} ms`;

/** Cold init of a bundle directory, as bench/workers.ts measures it. */
export type ColdInit = (
  dir: string,
  sourceMaps: boolean,
) => { readonly init: number; readonly cpu: number; readonly process: number };

/** Synthesizes one WorkerFunction (construct id `id`) in a stack of its own; returns its bundle's directory. */
export function deployedBundle(stackId: string, id: string, props: WorkerFunctionProps): string {
  const app: App = newApp();
  const stack = new Stack(app, stackId, { env: { account: '111111111111', region: 'us-east-1' } });
  const fn = new WorkerFunction(stack, id, props);
  const assembly = app.synth();
  const code = (fn.function.node.defaultChild as CfnFunction).code as { s3Key: string };
  return join(assembly.directory, `asset.${code.s3Key.replace(/\.zip$/, '')}`);
}

/** Prints a deployed bundle's size, its map's, its cold init with and without source maps, and the packages it holds. */
export function printDeployedBundle(worker: string, dir: string, coldInit: ColdInit): void {
  const size = statSync(join(dir, 'index.js')).size;
  const map = statSync(join(dir, 'index.js.map')).size;
  const plain = coldInit(dir, false);
  const mapped = coldInit(dir, true);
  console.log(
    `\n${worker} (as deployed): bundle ${kb(size)}, map ${kb(map)}, init ${ms(plain.init)}, ` +
      `with source maps ${ms(mapped.init)}, init CPU ${ms(mapped.cpu)}`,
  );
  const sources = JSON.parse(readFileSync(join(dir, 'index.js.map'), 'utf8')) as { sources: string[] };
  const packages = new Set(
    sources.sources.map(
      (s) => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(s)?.[1] ?? 'own code (lambda/, service/)',
    ),
  );
  console.log(`${worker} bundle contains: ${[...packages].sort().join(', ')}`);
}

/**
 * An SQS handler's own time per record (milliseconds, median of 200 batches of 10 after 20
 * to warm up): each batch new (`fresh`), then the same batch again (`duplicate`).
 */
export async function perRecordTimes(
  handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>,
  body: () => string,
): Promise<{ fresh: number; duplicate: number }> {
  const time = async (bodies: string[]) => {
    const started = performance.now();
    await handler(sqsEvent(...bodies.map((b) => sqsRecord(b))), lambdaContext());
    return (performance.now() - started) / bodies.length;
  };
  const batch = () => Array.from({ length: 10 }, body);
  for (let i = 0; i < 20; i++) await time(batch()); // warm up
  const fresh: number[] = [];
  const duplicate: number[] = [];
  for (let i = 0; i < 200; i++) {
    const bodies = batch();
    fresh.push(await time(bodies));
    duplicate.push(await time(bodies));
  }
  return { fresh: median(fresh), duplicate: median(duplicate) };
}
