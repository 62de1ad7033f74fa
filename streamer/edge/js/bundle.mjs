// bundle.mjs: shared helpers for aestream edge bundles in JavaScript.
//
// An edge bundle is a folder with a model (NAME.onnx, maybe NAME.int8.onnx and NAME.ort), its sidecar
// NAME.edge.json and its conformance vectors NAME.conformance.json. JavaScript runtimes (onnxruntime-node,
// onnxruntime-web) cannot read an ONNX file's metadata_props, so everything a port needs comes from the
// sidecar JSON. This module:
//   - reads and checks a bundle (sidecar format and version, the conformance file written for this very
//     model, by sha256), failing with one line (BundleError) rather than a stack trace;
//   - decodes the conformance arrays (little-endian base64 with dtype and shape);
//   - compares arrays with a stage's tolerance (`within`);
//   - opens an onnxruntime session on either runtime, single-threaded, and runs rows through it in batches.
// No dependencies beyond node itself and the two onnxruntime packages (imported only when used).

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Sidecar `format` this port reads. */
export const SIDECAR_FORMAT = 'aestream-edge';
/** Sidecar `version`s this port knows. */
export const KNOWN_SIDECAR_VERSIONS = [1];
/** Conformance file `format` and the versions this port knows. */
export const CONFORMANCE_FORMAT = 'aestream-conformance';
export const KNOWN_CONFORMANCE_VERSIONS = [1];
/** Runtimes a session can be opened on. */
export const RUNTIMES = ['node', 'web'];
/** Largest number of rows sent to the model in one call. */
export const MAX_BATCH = 64;

/** An expected failure (bad bundle, bad argument): the CLIs print its message as one line and exit 1. */
export class BundleError extends Error {}

/** Throw a BundleError with `message`. */
export function fail(message) {
  throw new BundleError(message);
}

/** Print an error as the CLIs do: one line on stderr, `aestream-edge: ...`. */
export function report(err) {
  const text = err instanceof BundleError ? err.message : `${err?.message ?? err}`.split('\n')[0];
  process.stderr.write(`aestream-edge: ${text}\n`);
  if (!(err instanceof BundleError) && process.env.AESTREAM_EDGE_DEBUG) process.stderr.write(`${err?.stack}\n`);
}

/**
 * Run a CLI's async `main(argv)`: its return value is the exit code; any error is printed as ONE line on
 * stderr (`aestream-edge: ...`) with exit code 1 (set AESTREAM_EDGE_DEBUG=1 for the stack of unexpected ones).
 */
export async function runCli(main) {
  let code;
  try {
    code = await main(process.argv.slice(2));
  } catch (err) {
    report(err);
    code = 1;
  }
  process.exitCode = code ?? 0;
}

/**
 * Parse `argv` into {options, positional}. `spec` maps an option name (without `--`) to its default value;
 * every option takes one value (`--name value` or `--name=value`). Unknown options fail.
 */
export function parseArgs(argv, spec) {
  const options = { ...spec };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!(name in spec)) fail(`unknown option --${name} (options: ${Object.keys(spec).map((k) => `--${k}`).join(', ')})`);
    let value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) fail(`option --${name} needs a value`);
    options[name] = value;
  }
  return { options, positional };
}

/** Check a `--runtime` value. */
export function checkRuntime(runtime) {
  if (!RUNTIMES.includes(runtime)) fail(`--runtime must be one of ${RUNTIMES.join(', ')} (got ${runtime})`);
  return runtime;
}

/** sha256 of a file, as lowercase hex. */
export function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Parse a JSON file; a missing or malformed file fails with one line naming it. */
export function readJson(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    fail(`${basename(path)}: cannot be read (${path})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(`${basename(path)}: not valid JSON (${err.message})`);
  }
}

/** The first `n` hex digits of a sha256, for messages. */
function short(hash, n = 8) {
  return `${String(hash).slice(0, n)}...`;
}

/** The one sidecar (`*.edge.json`) of bundle folder `dir`. */
export function findSidecar(dir) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`${dir}: not a bundle folder`);
  const found = readdirSync(dir).filter((f) => f.endsWith('.edge.json')).sort();
  if (found.length !== 1) {
    fail(`${dir}: a bundle holds one *.edge.json sidecar (found ${found.length ? found.join(', ') : 'none'})`);
  }
  return join(dir, found[0]);
}

/** Check a document's `format` and `version` (`what`: sidecar or conformance); `name` is its file name. */
function checkKind(doc, name, format, versions, what) {
  if (doc === null || typeof doc !== 'object' || doc.format !== format) {
    fail(`${name}: not an ${format} ${what === 'sidecar' ? 'sidecar' : 'file'} (format ${JSON.stringify(doc?.format)})`);
  }
  if (!versions.includes(doc.version)) {
    fail(`${name}: ${what} version ${JSON.stringify(doc.version)} is not one this port knows (${versions.join(', ')})`);
  }
}

/** Check a sidecar's `format` and `version` and the files it names; `name` is its file name, for messages. */
export function checkSidecar(sidecar, name) {
  checkKind(sidecar, name, SIDECAR_FORMAT, KNOWN_SIDECAR_VERSIONS, 'sidecar');
  if (typeof sidecar.model?.file !== 'string' || typeof sidecar.model?.sha256 !== 'string') {
    fail(`${name}: no model.file and model.sha256`);
  }
  if (typeof sidecar.files?.conformance?.file !== 'string') fail(`${name}: no files.conformance.file`);
}

/** Check a conformance document's `format` and `version`; `name` is its file name. */
export function checkConformance(doc, name) {
  checkKind(doc, name, CONFORMANCE_FORMAT, KNOWN_CONFORMANCE_VERSIONS, 'conformance');
  if (!Array.isArray(doc.stages)) fail(`${name}: no stages`);
}

/**
 * Read and check bundle folder `dir`: its sidecar, its model file (sha256 as the sidecar says) and its
 * conformance file (written for that model). `modelFile`: run another file of the bundle (e.g. the .ort)
 * against the same vectors (a `NAME` in it stands for the model's file name without .onnx, so one pattern
 * such as NAME.ort serves many bundles); when the sidecar lists it under `files` with a sha256, that is
 * checked too.
 * Returns {dir, name, sidecar, sidecarFile, conformance, conformanceFile, modelPath, modelFile, stages}
 * where `stages` maps a stage name to {array, tolerance, what}.
 */
export function loadBundle(dir, { modelFile } = {}) {
  const sidecarPath = findSidecar(dir);
  const sidecarFile = basename(sidecarPath);
  const sidecar = readJson(sidecarPath);
  checkSidecar(sidecar, sidecarFile);

  const mainModel = sidecar.model.file;
  const mainPath = join(dir, mainModel);
  if (!existsSync(mainPath)) fail(`${sidecarFile}: its model ${mainModel} is not in ${dir}`);
  const actual = sha256File(mainPath);
  if (actual !== sidecar.model.sha256) {
    fail(`${sidecarFile} does not match ${mainModel} (written for sha256 ${short(sidecar.model.sha256)}, ` +
      `the model is ${short(actual)})`);
  }

  const conformanceFile = sidecar.files.conformance.file;
  const conformancePath = join(dir, conformanceFile);
  if (!existsSync(conformancePath)) fail(`${sidecarFile}: its conformance file ${conformanceFile} is not in ${dir}`);
  const conformance = readJson(conformancePath);
  checkConformance(conformance, conformanceFile);
  const writtenFor = conformance.model?.sha256;
  if (writtenFor !== sidecar.model.sha256 || writtenFor !== actual) {
    fail(`${conformanceFile} does not match ${mainModel} (written for sha256 ${short(writtenFor)}, ` +
      `the model is ${short(actual)})`);
  }
  const listed = sidecar.files.conformance.sha256;
  if (typeof listed === 'string') {
    const got = sha256File(conformancePath);
    if (got !== listed) {
      fail(`${conformanceFile} is not the file ${sidecarFile} lists (sha256 ${short(got)}, listed ${short(listed)})`);
    }
  }

  const chosen = modelFile ? modelFile.replaceAll('NAME', mainModel.replace(/\.onnx$/, '')) : mainModel;
  const modelPath = join(dir, chosen);
  if (chosen !== mainModel) checkOtherModelFile(sidecar, sidecarFile, dir, chosen);

  return {
    dir, name: sidecar.metadata?.name ?? mainModel.replace(/\.onnx$/, ''), sidecar, sidecarFile,
    conformance, conformanceFile, modelPath, modelFile: chosen, stages: decodeStages(conformance, conformanceFile),
  };
}

/** Check that `file` (not the sidecar's main model) exists and, when `files` lists it, has its sha256. */
function checkOtherModelFile(sidecar, sidecarFile, dir, file) {
  const path = join(dir, file);
  if (!existsSync(path)) fail(`${file} is not in ${dir}`);
  const entry = Object.values(sidecar.files ?? {}).find((f) => f && f.file === file);
  if (entry && typeof entry.sha256 === 'string') {
    const got = sha256File(path);
    if (got !== entry.sha256) {
      fail(`${file} is not the file ${sidecarFile} lists (sha256 ${short(got)}, listed ${short(entry.sha256)})`);
    }
  }
}

/** The stages of a conformance document by name: {array, tolerance, what}. */
export function decodeStages(doc, name = 'conformance') {
  const stages = new Map();
  for (const s of doc.stages) {
    try {
      stages.set(s.name, { array: decodeArray(s.array), tolerance: checkTolerance(s.tolerance), what: s.what });
    } catch (err) {
      fail(`${name}: stage ${s?.name}: ${err.message}`);
    }
  }
  return stages;
}

/** A stage by name; fails with one line when the conformance file lacks it. */
export function stage(bundle, name) {
  const s = bundle.stages.get(name);
  if (!s) fail(`${bundle.conformanceFile}: no stage ${name}`);
  return s;
}

/** A tolerance {abs, rel} with both numbers present. */
function checkTolerance(t) {
  const abs = Number(t?.abs ?? 0);
  const rel = Number(t?.rel ?? 0);
  if (!Number.isFinite(abs) || !Number.isFinite(rel)) throw new Error('tolerance is not {abs, rel}');
  return { abs, rel };
}

/** Stored dtypes: typed array and bytes per element ("bool" is stored as uint8 0/1). */
const DTYPES = {
  float64: [Float64Array, 8],
  float32: [Float32Array, 4],
  int64: [BigInt64Array, 8],
  int32: [Int32Array, 4],
  uint8: [Uint8Array, 1],
  bool: [Uint8Array, 1],
};

/**
 * Decode {dtype, shape, base64} (little-endian data) into {dtype, shape, data} with `data` a typed array
 * (int64: BigInt64Array; bool: Uint8Array of 0/1). Fails when the byte count does not fit the shape.
 */
export function decodeArray(value) {
  const { dtype, shape, base64 } = value ?? {};
  if (!(dtype in DTYPES)) throw new Error(`unknown array dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || typeof base64 !== 'string') throw new Error('not an encoded array (dtype, shape, base64)');
  const [Type, size] = DTYPES[dtype];
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== n * size) {
    throw new Error(`array data holds ${bytes.length} bytes, shape [${shape}] of ${dtype} needs ${n * size}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = new Type(n);
  for (let i = 0; i < n; i++) data[i] = readLE(view, dtype, i * size);
  return { dtype, shape: [...shape], data };
}

/** One little-endian element of `dtype` at byte `offset`. */
function readLE(view, dtype, offset) {
  switch (dtype) {
    case 'float64': return view.getFloat64(offset, true);
    case 'float32': return view.getFloat32(offset, true);
    case 'int64': return view.getBigInt64(offset, true);
    case 'int32': return view.getInt32(offset, true);
    default: return view.getUint8(offset);
  }
}

/** Any typed array or array (BigInt elements included) as a Float64Array. */
export function toFloat64(data) {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

/**
 * Compare `got` with `want` (typed arrays or arrays, BigInt allowed) under tolerance {abs, rel}:
 * every |got - want| <= abs + rel * |want|. Returns {ok, maxAbsDiff}; lengths that differ give
 * {ok: false, maxAbsDiff: Infinity}, and a NaN difference counts as Infinity.
 */
export function within(got, want, tol) {
  if (got.length !== want.length) return { ok: false, maxAbsDiff: Infinity };
  const abs = Number(tol?.abs ?? 0);
  const rel = Number(tol?.rel ?? 0);
  let ok = true;
  let maxAbsDiff = 0;
  for (let i = 0; i < got.length; i++) {
    const w = Number(want[i]);
    let d = Math.abs(Number(got[i]) - w);
    if (Number.isNaN(d)) d = Number(got[i]) === w || (Number.isNaN(Number(got[i])) && Number.isNaN(w)) ? 0 : Infinity;
    if (!(d <= abs + rel * Math.abs(w))) ok = false;
    if (d > maxAbsDiff) maxAbsDiff = d;
  }
  return { ok, maxAbsDiff };
}

/** Same shape (arrays of dimensions). */
export function sameShape(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Open an onnxruntime session on `modelPath`. runtime "node": onnxruntime-node on the CPU; "web":
 * onnxruntime-web's WebAssembly backend (it runs in node too). Both single-threaded, so timings and
 * results do not depend on the machine's cores. Returns {session, ort, runtime}.
 */
export async function createSession(modelPath, runtime) {
  checkRuntime(runtime);
  const bytes = new Uint8Array(readFileSync(modelPath));
  try {
    if (runtime === 'node') {
      const ort = await import('onnxruntime-node');
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
      });
      return { session, ort, runtime };
    }
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    return { session, ort, runtime };
  } catch (err) {
    return fail(`${basename(modelPath)}: onnxruntime-${runtime} cannot load it (${`${err?.message ?? err}`.split('\n')[0]})`);
  }
}

/**
 * The model's input and output names: the sidecar's (model.inputs / metadata.inputs, first entry), checked
 * against the session's; the session's first ones when the sidecar names none.
 */
export function ioNames(sidecar, session, sidecarFile = 'sidecar') {
  const pick = (key, have) => {
    const name = sidecar.model?.[key]?.[0]?.name ?? sidecar.metadata?.[key]?.[0]?.name ?? have[0];
    if (!have.includes(name)) fail(`${sidecarFile}: ${key} ${name} is not the model's (${have.join(', ')})`);
    return name;
  };
  return { input: pick('inputs', session.inputNames), output: pick('outputs', session.outputNames) };
}

/** onnxruntime tensor type of a decoded dtype. */
const TENSOR_TYPES = { float64: 'float64', float32: 'float32', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'bool' };

/**
 * Run `rows` rows (typed array `data`, each row of shape `rowShape`, dtype `dtype`) through the session in
 * batches of at most `batch` rows. Returns {data, shape} of the output: the batches' outputs concatenated
 * (as a Float64Array for float outputs, typed as returned otherwise).
 */
export async function runRows({ session, ort }, names, data, rowShape, dtype, { batch = MAX_BATCH } = {}) {
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const rows = rowSize ? data.length / rowSize : 0;
  const parts = [];
  let outRowShape = null;
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start);
    const chunk = data.slice(start * rowSize, (start + n) * rowSize);
    const tensor = new ort.Tensor(TENSOR_TYPES[dtype], dtype === 'bool' ? Uint8Array.from(chunk) : chunk, [n, ...rowShape]);
    const result = await session.run({ [names.input]: tensor });
    const out = result[names.output];
    outRowShape = out.dims.slice(1);
    parts.push(out.data);
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float64Array(total);
  let at = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) out[at + i] = Number(p[i]);
    at += p.length;
  }
  return { data: out, shape: [rows, ...(outRowShape ?? [])] };
}

/** Release a session (native memory) if the runtime supports it. */
export async function closeSession({ session }) {
  if (session && typeof session.release === 'function') await session.release();
}

/** Median of numbers (even count: the mean of the two middle values). */
export function median(values) {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  if (n === 0) return NaN;
  const k = n >> 1;
  return n % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/**
 * percentile(v, q) as numpy's default (linear): sort v, position q / 100 * (n - 1), linear interpolation
 * between the two closest ranks (numpy's two-sided form of the interpolation, so results agree to the bit).
 */
export function percentile(values, q) {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  if (n === 0) return NaN;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const t = pos - lo;
  if (lo + 1 >= n) return s[n - 1];
  const a = s[lo];
  const b = s[lo + 1];
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

/** True when the module at `url` (import.meta.url) is the script node was started with. */
export function isMain(url) {
  return Boolean(process.argv[1]) && url === pathToFileURL(process.argv[1]).href;
}

/** Print one JSON line on stdout. */
export function printJson(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}
