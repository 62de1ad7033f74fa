// bench.mjs: time a bundle's model in a JavaScript runtime, one thread, at given batch sizes.
//
//   node bench.mjs --runtime node|web [--batches 1,64] [--seconds 1.0] [--model-file NAME] MODEL_OR_DIR [...]
//
// Each argument is a bundle folder (its sidecar's model file, or --model-file; NAME stands for the model's
// name, e.g. NAME.ort) or a model file inside a bundle folder (e.g. edge/ecg/ecg.onnx). The input is
// not random: the bundle's conformance `model_inputs` rows, repeated or cut to the batch size. Per (model,
// batch): 2 warm-up calls, then calls timed with process.hrtime.bigint until at least 20 calls and at least
// --seconds have passed. One JSON line each: {"model", "runtime", "batch", "median_ms", "p99_ms", "calls"}.

import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  runCli, parseArgs, checkRuntime, loadBundle, stage, createSession, ioNames, closeSession, printJson, fail,
  percentile, isMain,
} from './bundle.mjs';

/** Fewest timed calls per (model, batch), and the warm-up calls before them. */
export const MIN_CALLS = 20;
export const WARMUP_CALLS = 2;

/** A bundle argument as {dir, modelFile}: a folder (with --model-file, if any) or a model file in one. */
export function target(arg, modelFile) {
  if (!existsSync(arg)) fail(`${arg}: no such bundle folder or model file`);
  if (statSync(arg).isDirectory()) return { dir: arg, modelFile };
  return { dir: dirname(arg), modelFile: basename(arg) };
}

/** `batch` rows of `data` (rows of `rowSize`), cycling through its rows: a typed array of the same type. */
export function batchOf(data, rowSize, batch) {
  const rows = data.length / rowSize;
  const out = new data.constructor(batch * rowSize);
  for (let k = 0; k < batch; k++) out.set(data.subarray((k % rows) * rowSize, (k % rows + 1) * rowSize), k * rowSize);
  return out;
}

/** Time `run()` (async): warm-up, then until MIN_CALLS calls and `seconds` have passed. Durations in ms. */
export async function timeCalls(run, seconds) {
  for (let i = 0; i < WARMUP_CALLS; i++) await run();
  const times = [];
  const budget = BigInt(Math.round(seconds * 1e9));
  const t0 = process.hrtime.bigint();
  while (times.length < MIN_CALLS || process.hrtime.bigint() - t0 < budget) {
    const a = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  return times;
}

/** A duration in ms, to 5 decimals (10 ns). */
function ms(v) {
  return Number(v.toFixed(5));
}

/** Benchmark one bundle's model at every batch size; prints a line per batch. */
export async function benchBundle({ dir, modelFile }, runtime, batches, seconds) {
  const bundle = loadBundle(dir, { modelFile });
  const inputs = stage(bundle, 'model_inputs').array;
  const rowShape = inputs.shape.slice(1);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const handle = await createSession(bundle.modelPath, runtime);
  try {
    const names = ioNames(bundle.sidecar, handle.session, bundle.sidecarFile);
    for (const batch of batches) {
      const tensor = new handle.ort.Tensor(inputs.dtype, batchOf(inputs.data, rowSize, batch), [batch, ...rowShape]);
      const feeds = { [names.input]: tensor };
      const times = await timeCalls(() => handle.session.run(feeds), seconds);
      printJson({ model: bundle.modelFile, runtime, batch, median_ms: ms(percentile(times, 50)),
        p99_ms: ms(percentile(times, 99)), calls: times.length });
    }
  } finally {
    await closeSession(handle);
  }
}

async function main(argv) {
  const { options, positional } = parseArgs(argv, { runtime: undefined, batches: '1,64', seconds: '1.0',
    'model-file': undefined });
  if (!positional.length || !options.runtime) {
    fail('usage: node bench.mjs --runtime node|web [--batches 1,64] [--seconds 1.0] [--model-file NAME] MODEL_OR_DIR [...]');
  }
  const runtime = checkRuntime(options.runtime);
  const batches = String(options.batches).split(',').map(Number);
  if (!batches.length || !batches.every((b) => Number.isInteger(b) && b > 0)) fail(`--batches must be positive integers (got ${options.batches})`);
  const seconds = Number(options.seconds);
  if (!(seconds >= 0)) fail(`--seconds must be a number >= 0 (got ${options.seconds})`);
  for (const arg of positional) await benchBundle(target(arg, options['model-file']), runtime, batches, seconds);
  return 0;
}

if (isMain(import.meta.url)) await runCli(main);
