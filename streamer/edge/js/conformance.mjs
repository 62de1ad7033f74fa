// conformance.mjs: run each bundle's conformance `model_inputs` through its model in a JavaScript runtime
// and compare with the conformance `model_outputs`, within that stage's tolerance.
//
//   node conformance.mjs --runtime node|web [--model-file NAME] DIR [DIR...]
//
// One JSON line per bundle: {"model", "runtime", "rows", "max_abs_diff", "tolerance", "ok"}; exit code 1
// when any bundle is not ok. A bundle that cannot be read (unknown sidecar version, conformance file of
// another model, ...) gives one line on stderr and the next bundle is checked. `--model-file` runs another
// file of each bundle (e.g. NAME.ort with --runtime node; NAME stands for the model's name) against the
// same vectors.

import {
  runCli, parseArgs, checkRuntime, loadBundle, stage, createSession, ioNames, runRows, closeSession, within,
  sameShape, printJson, report, isMain, fail, MAX_BATCH,
} from './bundle.mjs';

/**
 * Check one bundle: its model on the conformance `model_inputs`, in batches of at most 64 rows, against
 * `model_outputs`. Returns the result line (an object).
 */
export async function checkBundle(dir, runtime, modelFile) {
  const bundle = loadBundle(dir, { modelFile });
  const inputs = stage(bundle, 'model_inputs').array;
  const want = stage(bundle, 'model_outputs');
  const handle = await createSession(bundle.modelPath, runtime);
  try {
    const names = ioNames(bundle.sidecar, handle.session, bundle.sidecarFile);
    const got = await runRows(handle, names, inputs.data, inputs.shape.slice(1), inputs.dtype, { batch: MAX_BATCH });
    const shapeOk = sameShape(got.shape, want.array.shape);
    const cmp = shapeOk ? within(got.data, want.array.data, want.tolerance) : { ok: false, maxAbsDiff: Infinity };
    return {
      model: bundle.modelFile, runtime, rows: inputs.shape[0], max_abs_diff: cmp.maxAbsDiff,
      tolerance: want.tolerance, ok: cmp.ok,
      ...(shapeOk ? {} : { shape: got.shape, expected_shape: want.array.shape }),
    };
  } finally {
    await closeSession(handle);
  }
}

async function main(argv) {
  const { options, positional } = parseArgs(argv, { runtime: undefined, 'model-file': undefined });
  if (!positional.length || !options.runtime) {
    fail('usage: node conformance.mjs --runtime node|web [--model-file NAME] DIR [DIR...]');
  }
  const runtime = checkRuntime(options.runtime);
  let allOk = true;
  for (const dir of positional) {
    try {
      const result = await checkBundle(dir, runtime, options['model-file']);
      printJson(result);
      allOk &&= result.ok;
    } catch (err) {
      report(err);
      allOk = false;
    }
  }
  return allOk ? 0 : 1;
}

if (isMain(import.meta.url)) await runCli(main);
