"""Fuzzing every input format with hypothesis: real sample files mutated (cut short, bytes flipped or
inserted, header fields set to hostile values: huge sizes, zero, negative, NaN, inf, wrong types), each run
through the command a user would type, in-process, in a worker process of its own.

What every case must give: exit 0 (the file was still acceptable) or exactly one line on stderr (C libraries'
own output included: stderr is captured at the file-descriptor level) starting `streamer: error:` and naming
the input; never an uncaught exception, never a hang (a per-case time bound), never a signal (the worker would
die: the test sees it), and the worker's peak memory under a stated cap.

    python -m tests.fuzz FORMAT --examples N [--seed S]     # one format, prints a JSON report
    python benchmarks/bench_fuzz.py                          # every format, many examples (the long run)

`tests/test_fuzz.py` runs every format with a few examples in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
MODELS = ROOT / "samples" / "models"
CASE_SECONDS = 30  # per-case time bound: a case that takes longer is a hang
MEMORY_CAP_MB = 3000  # the worker's peak RSS over all its cases
FORMATS = ("wfdb", "csv", "edf", "wav", "flac", "ogg", "png", "jpg", "npz", "idx", "codes", "model")

# values a hostile or damaged file puts in a field
HOSTILE_TEXT = ["0", "-1", "-999999999", "1e30", "1e308", "nan", "inf", "-inf", "", " ", "x", "99999999999999999999",
                "0x10", "1,5", "\x00", "é", "NaN", "1e-300", "2147483648", "-2147483649", "4294967296"]
HOSTILE_NUMBERS = [0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 63 - 1, 65535, 100000, 10 ** 9]


class Hang(BaseException):
    """A case over its time bound (BaseException: no `except Exception` in the program swallows it)."""


# --- the real files each format starts from -------------------------------------------------------------

def _record_106(seconds: float = 12.0) -> tuple[np.ndarray, int]:
    import wfdb

    rec = wfdb.rdrecord(str(MITDB / "106"), sampto=int(seconds * 360), physical=False)
    return rec.d_signal, 360


def make_seeds(folder: Path) -> dict[str, Path]:
    """One real, valid file (or record) per format, in `folder`."""
    import cv2
    import soundfile as sf
    import wfdb

    digital, fs = _record_106()
    digital = np.clip(digital[:, :1], -2048, 2047)
    wfdb.wrsamp("rec", fs=fs, units=["mV"], sig_name=["MLII"], d_signal=digital, fmt=["212"], adc_gain=[200],
                baseline=[0], write_dir=str(folder))
    ann = wfdb.rdann(str(MITDB / "106"), "atr", sampto=len(digital) - 1)
    wfdb.wrann("rec", "atr", np.asarray(ann.sample), symbol=list(ann.symbol), write_dir=str(folder))
    mv = digital[:, 0] / 200.0
    t = np.arange(len(mv)) / fs
    (folder / "ecg.csv").write_text("time,mlii\n" + "".join(f"{a:.5f},{b:.3f}\n" for a, b in zip(t, mv)))
    import pyedflib

    with pyedflib.EdfWriter(str(folder / "ecg.edf"), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": "MLII", "dimension": "uV", "sample_frequency": fs, "physical_max": 10000,
                             "physical_min": -10000, "digital_max": 32767, "digital_min": -32768}])
        w.writeSamples([mv * 1000.0])
    audio, rate = sf.read(ROOT / "samples" / "audio" / "bach.wav", frames=8000 * 3)
    for fmt in ("wav", "flac", "ogg"):
        sf.write(folder / f"music.{fmt}", audio, rate)
    digit = cv2.imread(str(ROOT / "samples" / "images" / "test_00000.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / "digit.png"), digit)
    cv2.imwrite(str(folder / "digit.jpg"), digit)
    digits = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                       for p in sorted((ROOT / "samples" / "images").glob("test_*.png"))[:8]])
    np.savez(folder / "digits.npz", images=digits)
    (folder / "digits-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", *digits.shape)
                                               + digits.tobytes())
    from streamer.audio.codec import encode_file

    encode_file(folder / "music.wav", MODELS / "music.onnx").save(folder / "music.codes.npz")
    return {"wfdb": folder / "rec", "csv": folder / "ecg.csv", "edf": folder / "ecg.edf",
            "wav": folder / "music.wav", "flac": folder / "music.flac", "ogg": folder / "music.ogg",
            "png": folder / "digit.png", "jpg": folder / "digit.jpg", "npz": folder / "digits.npz",
            "idx": folder / "digits-idx3-ubyte", "codes": folder / "music.codes.npz"}


# --- mutations --------------------------------------------------------------------------------------------

def mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """Cut short, flip bytes, insert bytes, or overwrite a 4-byte field with a hostile number."""
    how = data.draw(st.sampled_from(["cut", "flip", "insert", "field", "empty"]))
    if how == "empty" or not raw:
        return b""
    if how == "cut":
        return raw[:data.draw(st.integers(0, len(raw) - 1))]
    if how == "flip":
        out = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] ^= data.draw(st.integers(1, 255))
        return bytes(out)
    if how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        return raw[:i] + data.draw(st.binary(min_size=1, max_size=64)) + raw[i:]
    i = data.draw(st.integers(0, max(0, min(len(raw), 512) - 4)))  # headers live near the start
    value = data.draw(st.sampled_from(HOSTILE_NUMBERS)) & 0xFFFFFFFF
    order = data.draw(st.sampled_from(["<I", ">I"]))
    return raw[:i] + struct.pack(order, value) + raw[i + 4:]


def mutate_text(data: st.DataObject, text: str) -> str:
    """A token (a header field, a CSV cell) replaced by a hostile value, a line dropped or cut, or the bytes."""
    lines = text.splitlines(keepends=True)
    how = data.draw(st.sampled_from(["token", "token", "drop_line", "cut"]))
    if how == "cut":
        return text[:data.draw(st.integers(0, max(0, len(text) - 1)))]
    i = data.draw(st.integers(0, min(len(lines), 40) - 1))
    if how == "drop_line":
        return "".join(lines[:i] + lines[i + 1:])
    sep = "," if "," in lines[i] else " "
    tokens = lines[i].rstrip("\n").split(sep)
    j = data.draw(st.integers(0, len(tokens) - 1))
    tokens[j] = data.draw(st.sampled_from(HOSTILE_TEXT))
    lines[i] = sep.join(tokens) + "\n"
    return "".join(lines)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.sampled_from([0, -1, 2 ** 63, 10 ** 30, 0.5]) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


def mutate_json(data: st.DataObject, value: Any) -> Any:
    """One leaf (or the whole value) of a metadata value replaced by another JSON value of any type."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: mutate_json(data, value[key])}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate_json(data, value[i]), *value[i + 1:]]
    return data.draw(JSON_VALUES)


# --- one case -----------------------------------------------------------------------------------------------

def run_cli(args: list[str]) -> tuple[int, str, str, BaseException | None]:
    """The CLI in this process, stderr captured at the file descriptor (C libraries' writes included)."""
    from click.testing import CliRunner

    from streamer.cli.main import main

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            result = CliRunner().invoke(main, args, catch_exceptions=True)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        c_level = capture.read().decode(errors="replace")
    error = result.exception if result.exception and not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, c_level + result.stderr, error


def verdict(args: list[str], names: list[str]) -> tuple[int, str | None]:
    """(exit code, None if the run behaved, else what went wrong)."""
    signal.alarm(CASE_SECONDS)
    try:
        code, out, err, exc = run_cli(args)
    except Hang:
        return -1, f"hang (over {CASE_SECONDS} s)"
    finally:
        signal.alarm(0)
    if exc is not None:
        return code, f"uncaught {type(exc).__name__}: {str(exc)[:200]}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 0:
        return code, None if not any("Traceback" in ln for ln in lines) else "traceback with exit 0"
    if args[0] == "inspect" and code == 1 and not lines:  # a model the engine refuses, shown with its problems
        return code, None if "this model cannot be used: metadata " in out else "inspect exit 1 without problems"
    if len(lines) != 1:
        return code, f"exit {code} with {len(lines)} lines on stderr: {' | '.join(lines[:4])[:300]}"
    if not lines[0].startswith("streamer: error: "):
        return code, f"exit {code}: {lines[0][:200]}"
    if not any(name in lines[0] for name in names):
        return code, f"the line names no input: {lines[0][:200]}"
    return code, None


# --- one format ----------------------------------------------------------------------------------------------

def case_for(fmt: str, seeds: dict[str, Path], work: Path, data: st.DataObject) -> tuple[list[str], list[str]]:
    """Write one mutated input for `fmt` in `work`; (the CLI arguments, names the error line may give)."""
    out = ["--no-dashboard"]
    if fmt == "wfdb":
        for suffix in (".hea", ".dat", ".atr"):
            shutil.copy(seeds["wfdb"].with_suffix(suffix), work / f"rec{suffix}")
        part = data.draw(st.sampled_from([".hea", ".hea", ".dat", ".atr"]))
        path = work / f"rec{part}"
        if part == ".hea":
            path.write_text(mutate_text(data, path.read_text()))
        else:
            path.write_bytes(mutate_bytes(data, path.read_bytes()))
        return ["ecg", str(work / "rec"), "--speed", "max", *out], ["rec"]
    if fmt in ("csv", "edf"):
        path = work / seeds[fmt].name
        if fmt == "csv":
            path.write_text(mutate_text(data, seeds[fmt].read_text()))
        else:
            path.write_bytes(mutate_bytes(data, seeds[fmt].read_bytes()))
        return ["ecg", str(path), "--speed", "max", *out], [path.name]
    if fmt in ("wav", "flac", "ogg"):
        path = work / seeds[fmt].name
        path.write_bytes(mutate_bytes(data, seeds[fmt].read_bytes()))
        return ["audio", "--file", str(path), "--speed", "max", "--out", str(work / "o.wav"), *out], [path.name]
    if fmt in ("png", "jpg"):
        folder = work / "images"
        folder.mkdir()
        path = folder / seeds[fmt].name
        path.write_bytes(mutate_bytes(data, seeds[fmt].read_bytes()))
        return ["images", str(folder), "--out", str(work / "o"), *out], ["images", path.name]
    if fmt in ("npz", "idx"):
        path = work / seeds[fmt].name
        if fmt == "npz" and data.draw(st.booleans()):  # a valid archive whose array is hostile
            images = np.load(seeds[fmt])["images"]
            hostile = data.draw(st.sampled_from([images[:0], images[0], images.astype(np.float64) * np.nan,
                                                 images.astype(np.float32) * 1e30, images[..., None].repeat(5, -1),
                                                 np.array("text"), images.astype(np.int64) - 2 ** 40]))
            np.savez(path, images=hostile)
        else:
            path.write_bytes(mutate_bytes(data, seeds[fmt].read_bytes()))
        return ["images", str(path), "--out", str(work / "o"), *out], [path.name]
    if fmt == "codes":
        path = work / "music.codes.npz"
        if data.draw(st.booleans()):
            fields = dict(np.load(seeds["codes"]))
            key = data.draw(st.sampled_from(sorted(fields)))
            fields[key] = np.asarray(data.draw(st.sampled_from(
                [0, -1, 10 ** 12, float("nan"), float("inf"), "x", [1, 2], [[1.0, float("nan")]]])))
            np.savez(path, **fields)
        else:
            path.write_bytes(mutate_bytes(data, seeds["codes"].read_bytes()))
        return ["decode", str(path), "-o", str(work / "o.wav")], [path.name]
    if fmt == "model":
        import onnx

        name = data.draw(st.sampled_from(["ecg.onnx", "denoise.onnx", "music.onnx"]))
        proto = onnx.load(str(MODELS / name))
        prop = data.draw(st.sampled_from(list(proto.metadata_props)))
        try:
            value = json.loads(prop.value)
        except json.JSONDecodeError:
            value = prop.value
        prop.value = json.dumps(mutate_json(data, value), allow_nan=True)
        path = work / name
        onnx.save(proto, str(path))
        for companion in ("music.encoder.onnx", "music.decoder.onnx"):
            if name == "music.onnx":
                shutil.copy(MODELS / companion, work / companion)
        command = {"ecg.onnx": ["ecg", str(seeds["wfdb"]), "--speed", "max"],
                   "denoise.onnx": ["images", str(seeds["png"]), "--out", str(work / "o")],
                   "music.onnx": ["audio", "--file", str(seeds["wav"]), "--speed", "max", "--out",
                                  str(work / "o.wav")]}[name]
        if data.draw(st.booleans()):
            return ["inspect", str(path)], [name]
        return [*command, "--model", str(path), *out], [name]
    raise ValueError(f"unknown format {fmt}")


def fuzz(fmt: str, examples: int, seed: int, case_file: Path) -> dict[str, Any]:
    """Run `examples` cases of one format; the report lists each failure once per kind."""
    failures: dict[str, str] = {}
    counts = {"cases": 0, "accepted": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        seeds = make_seeds(Path(tmp))

        @hypothesis_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one(data: st.DataObject) -> None:
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                args, names = case_for(fmt, seeds, Path(work), data)
                case_file.write_text(json.dumps(args))  # if a signal kills this process, the case is named
                code, problem = verdict(args, names)
                counts["cases"] += 1
                if problem is None:
                    counts["accepted" if code == 0 else "refused"] += 1
                else:  # one example of each kind of failure
                    failures.setdefault(problem.split(":")[0][:80], f"{problem} <- {' '.join(args)}")

        one()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"format": fmt, **counts, "failures": sorted(failures.values()), "peak_rss_mb": round(peak_mb),
            "memory_cap_mb": MEMORY_CAP_MB}


def main() -> None:
    parser = argparse.ArgumentParser(description="Fuzz one input format (see the module docstring).")
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case-file", type=Path, default=Path(tempfile.gettempdir()) / "aestream-fuzz-case.json",
                        help="Where the case being run is written (what to look at if the worker dies).")
    args = parser.parse_args()

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang()

    signal.signal(signal.SIGALRM, on_alarm)
    report = fuzz(args.format, args.examples, args.seed, args.case_file)
    print(json.dumps(report))  # noqa: T201
    sys.exit(1 if report["failures"] or report["peak_rss_mb"] > MEMORY_CAP_MB else 0)


if __name__ == "__main__":
    main()
