// ecg_port.mjs: a reference port of the ECG beat-scoring path, written from the sidecar alone.
//
// Every constant (filter coefficients, window, normalisation, RR history, template, feature order, score
// weights, adaptive level, thresholds, warm-up) is read from the sidecar's `pipeline` steps; the code holds
// only the arithmetic the steps' "what" texts describe, and the sidecar's `conventions` (median of an even
// count: the mean of the two middle values; percentile: numpy's linear method). The port does not
// re-implement the R-peak detector nor the signal-quality checks: it takes the conformance stages `r_peaks`
// and `quality` for them (as the sidecar allows).
//
// Module: pure functions, one per pipeline step (highpass, beatWindows, normaliseBeat, rrFeatures,
// templateDeviation, modelInputs, rawScores, adaptiveScores, judgeBeats), plus `ecgSpec` (the steps read
// and checked from a sidecar) and `runPort` (the whole path with every stage compared to the conformance).
//
// CLI:
//   node ecg_port.mjs --runtime node|web [--from samples|model_inputs] [--model-file NAME] DIR [DIR...]
// From the conformance `samples` (default) or from its `model_inputs` (`--from model_inputs`: fed the
// reference's beat windows, it must give the same scores and events). One JSON line per stage
// {"stage", "max_abs_diff", "tolerance", "ok"}, one for the events, then a summary
// {"ok", "beats", "anomalies", "runtime", ...}. Exit 1 on any mismatch, naming the first stage that departs.

import {
  runCli, parseArgs, checkRuntime, loadBundle, stage, createSession, ioNames, runRows, closeSession, within,
  toFloat64, printJson, report, isMain, fail, median, percentile, MAX_BATCH,
} from './bundle.mjs';

// --- the sidecar's steps --------------------------------------------------------------------------------

/** Pipeline steps this port implements, and those it takes from the conformance file (or needs not). */
const PORTED = ['highpass', 'beat_window', 'normalise', 'rr_features', 'template', 'model_input', 'model',
  'raw_score', 'adaptive_score', 'morphology_score', 'judge', 'event'];
const TAKEN = ['input', 'r_peaks', 'signal_quality'];
const REQUIRED = ['beat_window', 'normalise', 'rr_features', 'model_input', 'model', 'raw_score', 'judge'];
const NORMALISE_KINDS = ['zscore', 'minmax', 'scale', 'center'];
const RR_NAMES = ['rr_prev_ratio', 'rr_next_ratio', 'rr_prev_s', 'rr_next_s', 'rr_prematurity', 'rr_pause'];

/** A number from a step, or a one-line failure naming the step and field. */
function num(step, field, file) {
  const v = step?.[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    fail(`${file}: pipeline step ${step?.step}: ${field} is not a number (${JSON.stringify(v)})`);
  }
  return v;
}

/**
 * The ECG steps of a sidecar, read and checked: {steps (by name), window, length, normalise, rrHistory,
 * template, features, width, score, morphology, judge}. A step this port does not know fails (a port must
 * not skip a step silently).
 */
export function ecgSpec(sidecar, file = 'sidecar') {
  const pipeline = sidecar.pipeline;
  if (!Array.isArray(pipeline)) fail(`${file}: no pipeline`);
  const steps = new Map(pipeline.map((s) => [s.step, s]));
  const missing = REQUIRED.filter((name) => !steps.has(name));
  if (missing.length) fail(`${file}: not an ECG beat pipeline (no ${missing.join(', ')} step)`);
  const unknown = [...steps.keys()].filter((name) => !PORTED.includes(name) && !TAKEN.includes(name));
  if (unknown.length) fail(`${file}: pipeline step ${unknown.join(', ')} is not one this port knows`);

  const win = steps.get('beat_window');
  const length = num(win, 'length', file);
  const kind = win.window?.kind;
  let window;
  if (kind === 'fixed') window = { kind, preS: num(win.window, 'pre_s', file), postS: num(win.window, 'post_s', file) };
  else if (kind === 'rr') window = { kind, preFraction: num(win.window, 'pre_fraction', file) };
  else fail(`${file}: beat window kind ${JSON.stringify(kind)} is not one this port knows (fixed, rr)`);

  const normalise = (steps.get('normalise').steps ?? []).map((n) => {
    if (!NORMALISE_KINDS.includes(n.kind)) fail(`${file}: normalise step ${n.kind} is not one this port knows`);
    if (n.kind === 'minmax') return { kind: n.kind, min: num(n, 'min', file), max: num(n, 'max', file) };
    if (n.kind === 'scale') return { kind: n.kind, factor: num(n, 'factor', file) };
    return { kind: n.kind };
  });

  const t = steps.get('template');
  const template = t ? { beats: num(t, 'beats', file), minRrPrevRatio: num(t, 'min_rr_prev_ratio', file),
    minScale: num(t, 'min_scale', file) } : null;

  const features = steps.get('model_input').features ?? [];
  for (const f of features) {
    if (f.name === 'beat' ? f.size !== length : !RR_NAMES.includes(f.name) || f.size !== 1) {
      fail(`${file}: model input feature ${f.name} (size ${f.size}) is not one this port knows`);
    }
  }
  const width = features.reduce((a, f) => a + f.size, 0);

  const raw = steps.get('raw_score');
  if (!['mae', 'mse'].includes(raw.kind)) fail(`${file}: raw score kind ${raw.kind} is not one this port knows`);
  const columns = raw.column_weights;
  if (!Array.isArray(columns) || columns.length !== width) fail(`${file}: raw_score column_weights do not have ${width} columns`);
  const a = steps.get('adaptive_score');
  const adaptive = a ? readAdaptive(a, file) : null;
  const score = { kind: raw.kind, columnWeights: Float64Array.from(columns), adaptive };

  const m = steps.get('morphology_score');
  const morphology = m ? {
    kind: raw.kind,
    columnWeights: columnWeights(features, m.weights ?? {}),
    adaptive: adaptive ? { ...adaptive, reference: num(m, 'reference', file) } : null,
  } : null;

  const j = steps.get('judge');
  const morphologyThreshold = j.morphology_threshold ?? null;
  if (morphologyThreshold !== null && !morphology) fail(`${file}: judge has a morphology_threshold but no morphology_score step`);
  const judge = { threshold: num(j, 'threshold', file), morphologyThreshold, warmupBeats: j.warmup_beats ?? 0 };

  return { steps, window, length, normalise, rrHistory: num(steps.get('rr_features'), 'history', file), template,
    features, width, score, morphology, judge, highpass: steps.get('highpass') ?? null };
}

/** The adaptive_score step's constants. */
function readAdaptive(a, file) {
  if (a.kind !== 'quantile_ratio') fail(`${file}: adaptive score kind ${a.kind} is not one this port knows`);
  return { beats: num(a, 'beats', file), quantile: num(a, 'quantile', file), minHistory: num(a, 'min_history', file),
    reference: num(a, 'reference', file), minDenominator: num(a, 'min_denominator', file) };
}

/**
 * Column weights of the model input: each feature's weight spread evenly over its columns (the beat's
 * `length` columns get weight / length each); a feature without a weight gets 0.
 */
export function columnWeights(features, weights) {
  const out = [];
  for (const f of features) {
    const w = Number(weights[f.name] ?? 0);
    for (let c = 0; c < f.size; c++) out.push(w / f.size);
  }
  return Float64Array.from(out);
}

// --- the steps ----------------------------------------------------------------------------------------------

/** The high-pass step's coefficients {b, a, zi} for `rate` (Hz); fails when the sidecar has none for it. */
export function highpassCoefficients(step, rate, file = 'sidecar') {
  const table = step.coefficients ?? {};
  const key = Object.keys(table).find((k) => Number(k) === rate);
  if (key === undefined) fail(`${file}: no high-pass coefficients for ${rate} Hz (has ${Object.keys(table).join(', ')})`);
  return table[key];
}

/**
 * Causal IIR filter, transposed direct form II: y[n] = b0 x[n] + z0; z_i = b[i+1] x[n] + z_(i+1) - a[i+1] y[n]
 * (z beyond the order is 0; a[0] = 1); initial state z = zi * x[0].
 */
export function highpass(x, { b, a, zi }) {
  const order = zi.length;
  const z = zi.map((v) => v * (x.length ? x[0] : 0));
  const y = new Float64Array(x.length);
  for (let n = 0; n < x.length; n++) {
    const xn = x[n];
    const yn = b[0] * xn + z[0];
    for (let i = 0; i < order; i++) z[i] = b[i + 1] * xn + (i + 1 < order ? z[i + 1] : 0) - a[i + 1] * yn;
    y[n] = yn;
  }
  return y;
}

/**
 * RR intervals of every R peak with a successor, in time order (dropped beats included): rr_next_s,
 * rr_prev_s (rr_next_s for the first peak), typical = median of the last (up to) `history` rr_prev_s before
 * this peak (rr_prev_s itself when there are none; 1.0 if <= 0); the history then takes this peak's
 * rr_prev_s, except for the first peak. Returns one entry per peak but the last: {r, rNext, rrPrev, rrNext, typical}.
 */
export function rrFeatures(peaks, rate, history) {
  const out = [];
  let hist = [];
  for (let k = 0; k + 1 < peaks.length; k++) {
    const r = peaks[k];
    const rNext = peaks[k + 1];
    const rrNext = (rNext - r) / rate;
    const rrPrev = k > 0 ? (r - peaks[k - 1]) / rate : rrNext;
    let typical = hist.length ? median(hist) : rrPrev;
    if (typical <= 0) typical = 1.0;
    if (k > 0) hist = [...hist, rrPrev].slice(-history);
    out.push({ r, rNext, rrPrev, rrNext, typical });
  }
  return out;
}

/** The RR features of a beat from its intervals (the rr_features step's formulas), by name. */
export function rrRatios({ rrPrev, rrNext, typical }) {
  const prevRatio = rrPrev / typical;
  const nextRatio = rrNext / typical;
  return { rr_prev_ratio: prevRatio, rr_next_ratio: nextRatio, rr_prev_s: rrPrev, rr_next_s: rrNext,
    rr_prematurity: Math.max(0, 1 - prevRatio), rr_pause: Math.max(0, nextRatio - 1) };
}

/** Window start and end (fractional samples) of the beat at R peak `r` followed by `rNext`. */
export function windowBounds(window, r, rNext, rate) {
  if (window.kind === 'rr') {
    const rr = rNext - r;
    return [r - window.preFraction * rr, r + (1 - window.preFraction) * rr];
  }
  return [r - window.preS * rate, r + window.postS * rate];
}

/**
 * Cut one beat window from stream `x`: p_j = start + (end - start) * g_j with g_j = j / (length - 1) for a
 * fixed window (both ends included) or j / length for an rr window (the end excluded); linear interpolation
 * w_j = x[i] + (p_j - i) * (x[i + 1] - x[i]), i = floor(p_j).
 */
export function cutWindow(x, start, end, length, kind) {
  const div = kind === 'fixed' ? length - 1 : length;
  const w = new Float64Array(length);
  for (let j = 0; j < length; j++) {
    const p = start + (end - start) * (j / div);
    const i = Math.floor(p);
    const frac = p - i;
    w[j] = frac === 0 ? x[i] : x[i] + frac * (x[i + 1] - x[i]);
  }
  return w;
}

/**
 * The emitted beats of a stream: every R peak with a successor whose window starts at or after sample 0
 * and whose sample ceil(end) has arrived. Returns [{r, rr (see rrFeatures), window}] in time order.
 */
export function beatWindows(x, rr, spec, rate) {
  const beats = [];
  for (const item of rr) {
    const [start, end] = windowBounds(spec.window, item.r, item.rNext, rate);
    if (start < 0 || Math.ceil(end) > x.length - 1) continue;
    beats.push({ r: item.r, rr: item, window: cutWindow(x, start, end, spec.length, spec.window.kind) });
  }
  return beats;
}

/** Sample standard deviation (ddof = 1) around `mean`. */
function stdDdof1(w, mean) {
  let s = 0;
  for (const v of w) s += (v - mean) * (v - mean);
  return Math.sqrt(s / (w.length - 1));
}

/**
 * The normalise step on one beat, its steps in order: zscore (w - mean) / std(ddof=1) (std 0: divide by 1);
 * minmax (w - min) / (max - min); scale w * factor; center w - median(w).
 */
export function normaliseBeat(window, steps) {
  let w = Float64Array.from(window);
  for (const s of steps) {
    if (s.kind === 'zscore') {
      const mean = w.reduce((a, v) => a + v, 0) / w.length;
      const sd = stdDdof1(w, mean);
      const d = sd > 0 ? sd : 1;
      w = w.map((v) => (v - mean) / d);
    } else if (s.kind === 'minmax') {
      w = w.map((v) => (v - s.min) / (s.max - s.min));
    } else if (s.kind === 'scale') {
      w = w.map((v) => v * s.factor);
    } else {
      const m = median(w);
      w = w.map((v) => v - m);
    }
  }
  return w;
}

/**
 * The template step over a stream's beats in order: T = per-sample median of the last (up to) `beats`
 * earlier beats whose rr_prev_ratio >= min_rr_prev_ratio (a beat joins the set after its own deviation,
 * if it qualifies); no such beat yet: T = the beat itself. Deviation (w - T) / max(ptp(T), min_scale).
 */
export function templateDeviation(normalised, prevRatios, template) {
  const accepted = [];
  return normalised.map((w, k) => {
    const L = w.length;
    const T = new Float64Array(L);
    if (!accepted.length) T.set(w);
    else {
      const column = new Float64Array(accepted.length);
      for (let j = 0; j < L; j++) {
        for (let a = 0; a < accepted.length; a++) column[a] = accepted[a][j];
        T[j] = median(column);
      }
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of T) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const scale = Math.max(hi - lo, template.minScale);
    const out = w.map((v, j) => (v - T[j]) / scale);
    if (prevRatios[k] >= template.minRrPrevRatio) {
      accepted.push(w);
      if (accepted.length > template.beats) accepted.shift();
    }
    return out;
  });
}

/**
 * Model input rows (float32, beats x width): per feature in the model_input step's order, the beat's
 * samples or the named RR feature.
 */
export function modelInputs(samples, ratios, features, width) {
  const out = new Float32Array(samples.length * width);
  samples.forEach((w, k) => {
    let c = k * width;
    for (const f of features) {
      if (f.name === 'beat') { out.set(w, c); c += w.length; } else out[c++] = ratios[k][f.name];
    }
  });
  return out;
}

/**
 * Raw scores: per row, sum_c e_c * weight_c in float64 with e_c = |x_c - y_c| (mae) or (x_c - y_c)^2 (mse);
 * x the model input, y its output (rows of `width` columns).
 */
export function rawScores(inputs, outputs, columnWeightsArr, kind, width) {
  const n = inputs.length / width;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let c = 0; c < width; c++) {
      const d = inputs[k * width + c] - outputs[k * width + c];
      s += (kind === 'mae' ? Math.abs(d) : d * d) * columnWeightsArr[c];
    }
    out[k] = s;
  }
  return out;
}

/**
 * The adaptive score over a stream's raw scores in order: P = percentile of the last (up to) `beats` raw
 * scores before this beat; den = max(reference, P) when at least `minHistory` exist, else reference;
 * score = raw / max(den, minDenominator); every raw score then joins the history. No adaptive step: the raw score.
 */
export function adaptiveScores(raw, adaptive) {
  if (!adaptive) return Float64Array.from(raw);
  const history = [];
  return Float64Array.from(raw, (r) => {
    let den = adaptive.reference;
    if (history.length >= adaptive.minHistory) den = Math.max(adaptive.reference, percentile(history, adaptive.quantile));
    history.push(r);
    if (history.length > adaptive.beats) history.shift();
    return r / Math.max(den, adaptive.minDenominator);
  });
}

/**
 * The judge and event steps: per beat (index from 0), state = warmup if index < warmup_beats, else noise
 * if its quality is not good, else judged; anomaly = judged and score > threshold (and morphology score >
 * morphology_threshold when there is one). Returns the events {beat, r_sample, t, rr_ms, score, morphology,
 * threshold, anomaly, state}.
 */
export function judgeBeats({ rSample, rrPrev, scores, morphology, quality }, judge, rate) {
  return Array.from(scores, (score, k) => {
    const morph = morphology ? morphology[k] : null;
    const state = k < judge.warmupBeats ? 'warmup' : quality[k] ? 'judged' : 'noise';
    const shapeOk = judge.morphologyThreshold === null || morph > judge.morphologyThreshold;
    return { beat: k, r_sample: rSample[k], t: rSample[k] / rate, rr_ms: 1000 * rrPrev[k], score,
      morphology: morph, threshold: judge.threshold, anomaly: state === 'judged' && score > judge.threshold && shapeOk,
      state };
  });
}

// --- comparison with the conformance vectors ----------------------------------------------------------------

/** Flatten rows (arrays of typed arrays) into one Float64Array. */
function flat(rows) {
  const n = rows.reduce((a, r) => a + r.length, 0);
  const out = new Float64Array(n);
  let at = 0;
  for (const r of rows) { out.set(r, at); at += r.length; }
  return out;
}

/**
 * Compare events with the reference's: beat, r_sample, state and threshold equal; t and rr_ms to 1e-6;
 * score and morphology within the scores' tolerance; anomaly equal except where the reference's score (or
 * morphology score) is within that tolerance of its threshold (either verdict allowed there); `judge`
 * gives the morphology threshold. Returns {ok, maxAbsDiff, mismatches, first}.
 */
export function compareEvents(got, want, tol, judge) {
  const near = (a, b) => Math.abs(a - b) <= tol.abs + tol.rel * Math.abs(b);
  const problems = [];
  let maxAbsDiff = 0;
  if (got.length !== want.length) problems.push(`${got.length} events, the reference has ${want.length}`);
  for (let k = 0; k < Math.min(got.length, want.length); k++) {
    const g = got[k];
    const w = want[k];
    const bad = [];
    for (const f of ['beat', 'r_sample', 'state', 'threshold']) if (g[f] !== w[f]) bad.push(f);
    for (const f of ['t', 'rr_ms']) if (!(Math.abs(g[f] - w[f]) <= 1e-6)) bad.push(f);
    for (const f of ['score', 'morphology']) {
      if (w[f] === null || g[f] === null) { if (w[f] !== g[f]) bad.push(f); continue; }
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(g[f] - w[f]));
      if (!near(g[f], w[f])) bad.push(f);
    }
    const gate = judge.morphologyThreshold;
    const edge = near(w.score, w.threshold) || (gate !== null && w.morphology !== null && near(w.morphology, gate));
    if (g.anomaly !== w.anomaly && !edge) bad.push('anomaly');
    if (bad.length) problems.push(`beat ${k}: ${bad.map((f) => `${f} ${JSON.stringify(g[f])} vs ${JSON.stringify(w[f])}`).join(', ')}`);
  }
  return { ok: problems.length === 0, maxAbsDiff, mismatches: problems.length, first: problems[0] };
}

/** Collects stage comparisons: prints one line each, remembers the first that departs. */
class Checker {
  constructor(bundle) {
    this.bundle = bundle;
    this.firstBad = null;
    this.lines = [];
  }

  /** Compare a computed stage with the conformance stage `name` (skipped when the file lacks it). */
  check(name, got) {
    const ref = this.bundle.stages.get(name);
    if (!ref) return;
    const cmp = within(got, ref.array.data, ref.tolerance);
    this.emit({ stage: name, max_abs_diff: cmp.maxAbsDiff, tolerance: ref.tolerance, ok: cmp.ok });
  }

  /** Print a stage line; the first not ok is remembered. */
  emit(line) {
    printJson(line);
    if (!line.ok && !this.firstBad) this.firstBad = line;
  }
}

/** A conformance stage's data as numbers (Float64Array). */
function data(bundle, name) {
  return toFloat64(stage(bundle, name).array.data);
}

/**
 * The port's path from the raw samples to the model inputs (every stage compared on the way).
 * Returns {inputs (Float32Array), rSample, rrPrev}.
 */
function portFromSamples(bundle, spec, rate, checker) {
  const x = data(bundle, 'samples');
  const peaks = Array.from(data(bundle, 'r_peaks'));
  let xf = x;
  if (spec.highpass) {
    xf = highpass(x, highpassCoefficients(spec.highpass, rate, bundle.sidecarFile));
    checker.check('highpassed', xf);
  }
  const rr = rrFeatures(peaks, rate, spec.rrHistory);
  const beats = beatWindows(xf, rr, spec, rate);
  checker.check('beat_r_sample', beats.map((b) => b.r));
  checker.check('beat_windows', flat(beats.map((b) => b.window)));
  const normalised = beats.map((b) => normaliseBeat(b.window, spec.normalise));
  checker.check('normalised', flat(normalised));
  const ratios = beats.map((b) => rrRatios(b.rr));
  checker.check('rr_prev_s', ratios.map((r) => r.rr_prev_s));
  checker.check('rr_next_s', ratios.map((r) => r.rr_next_s));
  checker.check('rr_typical_s', beats.map((b) => b.rr.typical));
  for (const name of RR_NAMES) if (name !== 'rr_prev_s' && name !== 'rr_next_s') checker.check(name, ratios.map((r) => r[name]));
  let samples = normalised;
  if (spec.template) {
    samples = templateDeviation(normalised, ratios.map((r) => r.rr_prev_ratio), spec.template);
    checker.check('template_deviation', flat(samples));
  }
  const inputs = modelInputs(samples, ratios, spec.features, spec.width);
  checker.check('model_inputs', inputs);
  return { inputs, rSample: beats.map((b) => b.r), rrPrev: ratios.map((r) => r.rr_prev_s) };
}

/**
 * Run the port on one bundle: from `from` ("samples" or "model_inputs") to the events, in `runtime`,
 * printing a line per stage and a summary. Returns true when every stage and the events match.
 */
export async function runPort(dir, { runtime, from = 'samples', modelFile } = {}) {
  const bundle = loadBundle(dir, { modelFile });
  const spec = ecgSpec(bundle.sidecar, bundle.sidecarFile);
  const rate = Number(bundle.conformance.source?.rate_hz);
  if (!(rate > 0)) fail(`${bundle.conformanceFile}: no source.rate_hz`);
  const checker = new Checker(bundle);

  let path;
  if (from === 'samples') path = portFromSamples(bundle, spec, rate, checker);
  else if (from === 'model_inputs') {
    path = { inputs: stage(bundle, 'model_inputs').array.data, rSample: Array.from(data(bundle, 'beat_r_sample')),
      rrPrev: Array.from(data(bundle, 'rr_prev_s')) };
  } else fail(`--from must be samples or model_inputs (got ${from})`);
  if (path.inputs.length % spec.width) fail(`${bundle.conformanceFile}: model_inputs are not rows of ${spec.width}`);

  const handle = await createSession(bundle.modelPath, runtime);
  let outputs;
  try {
    const names = ioNames(bundle.sidecar, handle.session, bundle.sidecarFile);
    outputs = (await runRows(handle, names, path.inputs, [spec.width], 'float32', { batch: MAX_BATCH })).data;
  } finally {
    await closeSession(handle);
  }
  checker.check('model_outputs', outputs);

  const raw = rawScores(path.inputs, outputs, spec.score.columnWeights, spec.score.kind, spec.width);
  checker.check('raw_scores', raw);
  const scores = adaptiveScores(raw, spec.score.adaptive);
  checker.check('scores', scores);
  let morphology = null;
  if (spec.morphology) {
    const m = spec.morphology;
    morphology = adaptiveScores(rawScores(path.inputs, outputs, m.columnWeights, m.kind, spec.width), m.adaptive);
    checker.check('morphology_scores', morphology);
  }

  const quality = stage(bundle, 'quality').array.data;
  let events = [];
  if (quality.length !== scores.length) {
    checker.emit({ stage: 'events', max_abs_diff: Infinity, tolerance: null, ok: false,
      first_mismatch: `${scores.length} beats, the quality stage has ${quality.length}` });
  } else {
    events = judgeBeats({ rSample: path.rSample, rrPrev: path.rrPrev, scores, morphology, quality }, spec.judge, rate);
    const tol = stage(bundle, 'scores').tolerance;
    const cmp = compareEvents(events, bundle.conformance.events ?? [], tol, spec.judge);
    checker.emit({ stage: 'events', max_abs_diff: cmp.maxAbsDiff, tolerance: tol, ok: cmp.ok, events: events.length,
      mismatches: cmp.mismatches, ...(cmp.first ? { first_mismatch: cmp.first } : {}) });
  }

  const ok = !checker.firstBad;
  printJson({ ok, beats: scores.length, anomalies: events.filter((e) => e.anomaly).length, runtime,
    model: bundle.modelFile, from });
  if (!ok) {
    const b = checker.firstBad;
    report(new Error(`${bundle.name}: the port first departs from the reference at stage ${b.stage} ` +
      `(max_abs_diff ${b.max_abs_diff}, tolerance ${JSON.stringify(b.tolerance)}${b.first_mismatch ? `; ${b.first_mismatch}` : ''})`));
  }
  return ok;
}

async function main(argv) {
  const { options, positional } = parseArgs(argv, { runtime: undefined, from: 'samples', 'model-file': undefined });
  if (!positional.length || !options.runtime) {
    fail('usage: node ecg_port.mjs --runtime node|web [--from samples|model_inputs] [--model-file NAME] DIR [DIR...]');
  }
  const runtime = checkRuntime(options.runtime);
  let allOk = true;
  for (const dir of positional) {
    try {
      allOk = (await runPort(dir, { runtime, from: options.from, modelFile: options['model-file'] })) && allOk;
    } catch (err) {
      report(err);
      allOk = false;
    }
  }
  return allOk ? 0 : 1;
}

if (isMain(import.meta.url)) await runCli(main);
