"""The pre- and post-processing of each task, written out as data: the ordered steps, their formulas and their
constants, enough to re-implement them without reading this package.

Every constant is taken from the code that runs it (the module constants and the model's own metadata), never
copied, so a sidecar cannot describe a pipeline other than the one the engine runs; the conformance vectors
(`conformance.py`) then show it on real data, stage by stage. Conventions used in the formulas: arrays index
from 0; `median` of an even count is the mean of the two middle values; `percentile(v, q)` is numpy's default
(linear interpolation between closest ranks: position q/100 * (n - 1) in the sorted values); `ptp` is max - min;
float64 arithmetic unless a step says float32.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from streamer.core import dsp
from streamer.core.modelmeta import AUDIO_TASK, ECG_TASK, IMAGE_TASK

PIPELINE_VERSION = 1  # bump when a step's meaning changes; a port checks it with the sidecar's version
CONVENTIONS = {
    "indexing": "arrays index from 0; sample indices count from the stream's first sample",
    "median": "of an even count: the mean of the two middle values",
    "percentile": "percentile(v, q): sort v, position q / 100 * (n - 1), linear interpolation between the two "
                  "closest ranks (numpy's default)",
    "ptp": "max - min",
    "arithmetic": "float64 unless a step says float32; model inputs and outputs are float32",
}


def constants(module: ModuleType) -> dict[str, Any]:
    """A module's upper-case numeric constants (the tuning of a detector, say), as JSON values."""
    out: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.isupper() and not name.startswith("_") and isinstance(value, (int, float, tuple)) \
                and not isinstance(value, bool):
            if isinstance(value, tuple) and not all(isinstance(v, (int, float)) for v in value):
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def butterworth(order: int, cutoff: float | tuple[float, float], kind: str, rates: list[float]) -> dict[str, Any]:
    """A Butterworth filter's description and its coefficients at the given rates (scipy.signal.butter's
    bilinear-transform design, transfer-function form) with the unit initial state `zi` (lfilter_zi)."""
    table = {}
    for fs in rates:
        b, a, zi = dsp.butter_design(order, cutoff, kind, fs)
        table[f"{fs:g}"] = {"b": b.tolist(), "a": a.tolist(), "zi": zi.tolist()}
    return {"design": f"Butterworth, scipy.signal.butter({order}, {cutoff!r}, btype={kind!r}, fs=RATE)",
            "order": order, "cutoff_hz": list(cutoff) if isinstance(cutoff, tuple) else cutoff, "kind": kind,
            "form": "transposed direct form II (scipy.signal.lfilter): y[n] = b[0] x[n] + z0; "
                    "z_i = b[i+1] x[n] + z_(i+1) - a[i+1] y[n] (z beyond the order is 0), with a[0] = 1",
            "initial_state": "z = zi * x[0] at the stream's first sample (a constant input gives a constant "
                             "output from the start)",
            "coefficients": table}


def ecg_pipeline(meta: Mapping[str, Any], rates: list[float]) -> list[dict[str, Any]]:
    from streamer.ecg import beats, detector, quality, scoring, second_opinion

    fs_model = float(meta["sample_rate_hz"])
    beat, score, threshold = dict(meta["beat"]), dict(meta["score"]), dict(meta["threshold"])
    window = dict(beat["window"])
    names = [str(f["name"]) for f in meta["features"]]
    length = int(beat["length"])
    steps: list[dict[str, Any]] = [
        {"step": "input", "what": "one ECG lead, float64 samples in the record's physical unit (mV), at the "
                                  "stream's own rate RATE (any rate from 100 Hz up: nothing is resampled; "
                                  f"the model's windows are defined in seconds, its training data was at "
                                  f"{fs_model:g} Hz)", "conformance": "samples"},
        {"step": "r_peaks", "what": "causal streaming R-peak detector (Pan-Tompkins family with real-time "
                                    "decision rules); output: increasing R-peak sample indices. Another "
                                    "detector's beats are cut around its own peaks, so its windows shift with "
                                    "them; conformance `r_peaks` lets a port start from the reference's peaks "
                                    "and check everything after them", "algorithm": inspect.getdoc(detector),
         "constants": constants(detector), "filters": {
             "qrs": butterworth(detector.QRS_FILTER_ORDER, detector.QRS_BAND_HZ, "bandpass", rates),
             "locator": butterworth(detector.LOCATOR_ORDER, detector.LOCATOR_BAND_HZ, "bandpass", rates)},
         "reference_implementation": "streamer/ecg/detector.py", "conformance": "r_peaks"},
    ]
    if beat.get("highpass_hz"):
        steps.append({"step": "highpass", "what": "causal high-pass of the whole stream against baseline wander, "
                                                  "before any beat is cut",
                      **butterworth(beats.HIGHPASS_ORDER, float(beat["highpass_hz"]), "highpass", rates),
                      "conformance": "highpassed"})
    if window["kind"] == "fixed":
        bounds = (f"start = R - {float(window['pre_s'])!r} * RATE, end = R + {float(window['post_s'])!r} * RATE "
                  "(fractional sample positions)")
        grid = f"g_j = j / {length - 1} for j = 0..{length - 1} (both ends included)"
    else:
        f = float(window["pre_fraction"])
        bounds = (f"RR = R_next - R; start = R - {f!r} * RR, end = R + (1 - {f!r}) * RR (one cardiac cycle; "
                  f"samples)")
        grid = f"g_j = j / {length} for j = 0..{length - 1} (the end excluded)"
    steps.append({
        "step": "beat_window", "window": window, "length": length,
        "what": "for each R peak that has a successor R_next: " + bounds + "; " + grid + "; p_j = start + "
                "(end - start) * g_j; i = floor(p_j), w_j = x[i] + (p_j - i) * (x[i + 1] - x[i]) on the "
                "(high-passed) stream x, absolute sample indices from the stream's first sample",
        "dropped": {"before_start": "start < 0: the beat is not emitted (its RR still counts, see rr_features)",
                    "at_end": "the last R peak has no successor and is never emitted"},
        "emitted_when": "once R_next is known and sample ceil(end) has arrived",
        "conformance": "beat_windows (with beat_r_sample)"})
    stateless = [s for s in meta["normalisation"]["steps"] if s["kind"] != beats.TEMPLATE_STEP]
    formulas = {"zscore": "w = (w - mean(w)) / std(w, ddof=1) (std 0: divide by 1)",
                "minmax": "w = (w - min) / (max - min), global constants below",
                "scale": "w = w * factor", "center": "w = w - median(w) (the beat's own median)"}
    steps.append({"step": "normalise", "what": "per beat, in this order", "steps": [
        {**s, "formula": formulas[s["kind"]]} for s in stateless], "conformance": "normalised"})
    steps.append({
        "step": "rr_features", "history": beats.RR_HISTORY,
        "what": "per stream, for every R peak with a successor, in time order (also for peaks whose beat was "
                "dropped): rr_next_s = (R_next - R) / RATE; rr_prev_s = (R - R_prev) / RATE, or rr_next_s for "
                "the stream's first peak; typical = median of the stream's last (up to) "
                f"{beats.RR_HISTORY} rr_prev_s values from before this peak (rr_prev_s itself when there are "
                "none; 1.0 if typical <= 0); then the history appends this peak's rr_prev_s, except for the "
                "first peak. rr_prev_ratio = rr_prev_s / typical, rr_next_ratio = rr_next_s / typical, "
                "rr_prematurity = max(0, 1 - rr_prev_ratio), rr_pause = max(0, rr_next_ratio - 1)",
        "conformance": "rr_features"})
    template = next((s for s in meta["normalisation"]["steps"] if s["kind"] == beats.TEMPLATE_STEP), None)
    if template:
        steps.append({
            "step": "template", **template,
            "what": f"per stream: T = per-sample median of the last (up to) {int(template['beats'])} earlier "
                    f"beats (their `normalise` output) whose rr_prev_ratio >= {template['min_rr_prev_ratio']!r} "
                    "(the beat itself is not in the set; it joins it afterwards if it qualifies); no such beat "
                    f"yet: T = the beat itself. w = (w - T) / max(ptp(T), {template['min_scale']!r})",
            "conformance": "template_deviation"})
    steps.append({"step": "model_input", "features": list(meta["features"]),
                  "what": "float32 row: " + ", then ".join(
                      f"the {length} beat samples" if n == "beat" else n for n in names) +
                  f"; shape (batch, {sum(length if n == 'beat' else 1 for n in names)}); beats of many streams "
                  "share one batch (rows are independent)", "conformance": "model_inputs"})
    steps.append({"step": "model", "inputs": meta["inputs"], "outputs": meta["outputs"],
                  "conformance": "model_outputs"})
    weights = scoring.column_weights(names, length, score)
    groups = {n: float(dict(score.get("weights") or {}).get(n, 1.0 if n == "beat" else 0.0)) for n in names}
    steps.append({
        "step": "raw_score", "kind": score.get("kind", "mae"), "weights": groups,
        "what": "e_c = |x_c - y_c| (mae) or (x_c - y_c)^2 (mse) per column c, in float64 (x: model input, y: "
                "model output); raw = sum_c e_c * weight_c, where a feature's weight is spread evenly over its "
                f"columns (the beat's {length} columns get weight/{length} each)",
        "column_weights": [float(w) for w in weights],
        "conformance": "raw_scores"})
    adaptive = score.get("adaptive")
    if adaptive:
        steps.append({
            "step": "adaptive_score", **adaptive, "min_denominator": scoring.MIN_DENOMINATOR,
            "what": f"per stream: P = percentile(last (up to) {int(adaptive['beats'])} raw scores of the stream "
                    f"before this beat, {float(adaptive['quantile'])!r}); den = max(reference, P) when at least "
                    f"{int(adaptive['min_history'])} earlier raw scores exist, else reference; "
                    f"score = raw / max(den, {scoring.MIN_DENOMINATOR!r}); every beat's raw score then joins "
                    "the history", "conformance": "scores"})
    morph = scoring.morphology_spec(score)
    if morph:
        steps.append({
            "step": "morphology_score", "weights": morph["weights"],
            "reference": float(score["morphology"]["reference"]),
            "what": "the raw_score and adaptive_score steps again with these weights (the beat's shape alone) "
                    "and this reference, with its own history of morphology raw scores",
            "conformance": "morphology_scores"})
    steps.append({
        "step": "signal_quality", "what": "a verdict per beat (good, or why not: noise, flat line, saturated, "
                                          "signal missing); a beat that is not good is scored but never judged. "
                                          "Ports that do not re-implement it take every beat as good",
        "algorithm": inspect.getdoc(quality), "constants": constants(quality),
        "second_detector": {"algorithm": inspect.getdoc(second_opinion), "constants": constants(second_opinion)},
        "reference_implementation": "streamer/ecg/quality.py, streamer/ecg/second_opinion.py",
        "conformance": "quality"})
    gate = (threshold.get("morphology") or {}).get("value") if morph else None
    steps.append({
        "step": "judge", "threshold": float(threshold["value"]), "morphology_threshold": gate,
        "warmup_beats": scoring.judged_from(score),
        "what": "per beat (index from 0 in its stream): state = warmup if index < warmup_beats, else noise if "
                "its quality is not good, else judged; anomaly = judged and score > threshold" +
                (" and morphology score > morphology_threshold" if gate is not None else ""),
        "conformance": "events"})
    steps.append({"step": "event", "fields": {
        "beat": "index in the stream", "r_sample": "R peak sample index", "t": "r_sample / RATE (s)",
        "rr_ms": "1000 * rr_prev_s", "score": "score", "morphology": "morphology score (or null)",
        "threshold": "threshold", "anomaly": "bool", "state": "warmup | noise | judged"},
        "conformance": "events"})
    return steps


def audio_pipeline(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    from streamer.audio import framer, levels, resample

    fs = float(meta["sample_rate_hz"])
    frame = int(meta["frame"]["length"])
    norm = dict(meta["normalisation"])
    part = meta.get("part", "autoencoder")
    steps: list[dict[str, Any]] = [
        {"step": "input", "what": "float32 samples at the device's or file's rate RATE, (n,) or (n, channels)",
         "conformance": "samples"},
        {"step": "mono", "what": "mean of the channels, float32", "conformance": "mono"},
        {"step": "resample", "to_hz": fs, "library": "libsoxr (python-soxr), quality 'HQ' "
                                                      f"({resample.QUALITY}): 20-bit, passband 91 % of Nyquist",
         "what": f"RATE -> {fs:g} Hz, streaming, filter delay compensated (the output sample k is the input "
                 f"at time k / {fs:g} s); identity when RATE is {fs:g}. Another resampler departs by more than "
                 "the stage's tolerance (on 10 s of a 22.05 kHz recording: 8.5e-4 for soxr's VHQ preset, 1.4e-2 "
                 "for scipy's resample_poly; benchmarks/bench_edge_parity.py): the following stages are given on "
                 "the reference's output",
         "conformance": "resampled"},
        {"step": "frames", "length": frame, "hop": "HOP (a stream option): frame (default, no overlap) or "
                                                   f"{framer.min_hop(frame)}..{frame // 2} (overlap-add)",
         "what": "frame k holds stream samples [k * HOP - (frame - HOP), k * HOP + HOP) (the stream is padded "
                 "with frame - HOP zeros in front, and zeros at the end up to the last frame that covers a "
                 "real sample)", "conformance": "frames"},
        {"step": "peak_normalise", **norm, "live_floor": levels.PEAK_FLOOR,
         "what": f"gain = {float(norm.get('target', 1.0))!r} / peak, where peak is the whole input's max |x| "
                 f"when known (a file), else live the largest |x| seen so far including this frame, at least "
                 f"{levels.PEAK_FLOOR!r}; peak 0: gain 1. model input = float32(frame * gain)",
         "conformance": "gains, model_inputs"},
    ]
    if part == "decoder":
        steps = [{"step": "input", "what": "latent codes (batch, latent size), from the encoder",
                  "latent": meta.get("latent"), "conformance": "model_inputs"}]
    steps.append({"step": "model", "part": part, "inputs": meta["inputs"], "outputs": meta["outputs"],
                  "latent": meta.get("latent"), "conformance": "model_outputs"})
    if part != "encoder":
        steps.append({"step": "denormalise", "what": "reconstruction = float64(output) / gain",
                      "conformance": "reconstructions"})
        steps.append({"step": "overlap_add", "what": "HOP == frame: frames side by side, the first n samples "
                                                     "kept. HOP < frame: each frame times a periodic Hann "
                                                     "window h_i = 0.5 - 0.5 cos(2 pi i / frame), summed at its "
                                                     "position, divided per sample by the sum of the windows "
                                                     "there; the front padding dropped, n samples kept",
                      "conformance": "output"})
    return steps


def image_pipeline(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    from streamer.images import sizing

    image = dict(meta["image"])
    steps: list[dict[str, Any]] = [
        {"step": "input", "what": "an 8-bit grayscale image (colour: OpenCV's BGR->gray, 0.299 R + 0.587 G + "
                                  "0.114 B); float32 pixels = value / 255 (16-bit: / 65535)",
         "conformance": "image, pixels"}]
    if image.get("size") == "any":
        m, side = int(image["multiple_of"]), int(image["max_side"])
        steps.append({"step": "to_model", "multiple_of": m, "max_side": side,
                      "what": f"sides <= {side}: mirror-extend the bottom and right to the next multiple of {m} "
                              "(symmetric reflection: index i >= H maps to 2H - 1 - i, repeated); the model takes "
                              f"the whole image (batch, H', W'). A side > {side}: tiles of {side}x{side} at a "
                              f"stride of round({sizing.STRIDE_FRACTION} * {side}), the last tile of a row or "
                              "column flush with the image's edge; a side shorter than a tile mirror-extended "
                              "first", "conformance": "model_inputs"})
    else:
        h, w = int(image["height"]), int(image["width"])
        steps.append({"step": "to_model", "height": h, "width": w, "resize_limit": sizing.RESIZE_LIMIT,
                      "what": f"an image up to {sizing.RESIZE_LIMIT}x the model size on both sides is resized to "
                              f"{h}x{w}, each axis through a matrix: enlarging is OpenCV's INTER_LINEAR "
                              "(half-pixel centres: src = (dst + 0.5) * src_len / dst_len - 0.5, clamped to the "
                              "edge, linear between neighbours), shrinking is INTER_AREA (area averaging); "
                              "rows @ image @ columns^T. Larger images are cut into tiles "
                              f"of {h}x{w} at a stride of round({sizing.STRIDE_FRACTION} * side)",
                      "resize_rule": image.get("resize_rule"), "conformance": "model_inputs (resize_matrices)"})
    steps.append({"step": "model", "inputs": meta["inputs"], "outputs": meta["outputs"],
                  "conformance": "model_outputs"})
    back = ("crop the mirror extension away" if image.get("size") == "any" else
            "an axis enlarged on the way in comes back through the least-squares (pseudo-)inverse of its "
            "resize matrix, an axis shrunk comes back by INTER_LINEAR enlargement")
    steps.append({"step": "from_model", "what": back + "; tiles are blended with the separable sine window "
                                                       "sin(pi (i + 0.5) / n), normalised per pixel by the sum of "
                                                       "the windows there", "conformance": "denoised"})
    steps.append({"step": "output", "what": "8-bit image = round(clip(pixels, 0, 1) * 255) (round half to even)",
                  "conformance": "image_out"})
    return steps


def pipeline(meta: Mapping[str, Any], rates: list[float] | None = None) -> list[dict[str, Any]]:
    """The steps of the model's task, with the ECG filters' coefficients at the common ECG rates, the model's
    and `rates` (a port at another rate designs them from the step's `design`)."""
    task = meta.get("task")
    if task == ECG_TASK:
        common = {float(r) for r in dsp.TABLE_RATES}
        return ecg_pipeline(meta, sorted(set(rates or []) | common | {float(meta["sample_rate_hz"])}))
    if task == AUDIO_TASK:
        return audio_pipeline(meta)
    if task == IMAGE_TASK:
        return image_pipeline(meta)
    raise ValueError(f"no pipeline description for task {task!r}")


def as_json(value: Any) -> Any:
    """numpy scalars and arrays inside a description, as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
