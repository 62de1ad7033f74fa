"""Bad input: one line on stderr naming the file and the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from streamer.cli.main import main

from .conftest import mitdb_record, write_slice


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def record_copy(tmp_path: Path) -> Path:
    """A 60 s real record (from 106) that each test may damage."""
    return write_slice(mitdb_record("106"), tmp_path, "r", 0.0, 60.0)


def test_missing_dat(record_copy: Path, ecg_model: Path) -> None:
    record_copy.with_suffix(".dat").unlink()
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "r.dat", "missing")


def test_truncated_dat(record_copy: Path, ecg_model: Path) -> None:
    dat = record_copy.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:5001])
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "r.dat", "truncated")


def test_header_disagrees_with_data(record_copy: Path, ecg_model: Path) -> None:
    hea = record_copy.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    fields = lines[1].split()
    fields[6] = str((int(fields[6]) + 7) % 65536)  # checksum of a different signal
    hea.write_text("\n".join([lines[0], " ".join(fields), *lines[2:]]) + "\n")
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "r.dat", "header disagrees with data")


def test_header_length_disagrees(record_copy: Path, ecg_model: Path) -> None:
    hea = record_copy.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    name, nsig, fs, n = first.split()[:4]
    hea.write_text("\n".join([f"{name} {nsig} {fs} {int(n) // 2}", *rest]) + "\n")
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "r.dat", "header disagrees with data")


def _csv_from_record(tmp_path: Path, n: int = 3600) -> tuple[Path, list[str]]:
    from streamer.ecg.readers import read_recording

    x = read_recording(mitdb_record("106")).signal[:n]
    lines = ["time,mlii"] + [f"{i / 360:.6f},{v:.4f}" for i, v in enumerate(x)]
    return tmp_path / "ecg.csv", lines


@pytest.mark.parametrize("bad", ["abc", "inf", ""])
def test_csv_with_text_or_inf(tmp_path: Path, ecg_model: Path, bad: str) -> None:
    """(`nan` is a missing sample, a gap: tests/test_quality.py)"""
    path, lines = _csv_from_record(tmp_path)
    lines[100] = f"{99 / 360:.6f},{bad}"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "ecg.csv", "line 101")


def test_empty_file(tmp_path: Path, ecg_model: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model), "--fs", "360")
    assert_one_line_error(code, err, "empty.csv", "empty")


def test_flat_line(tmp_path: Path, ecg_model: Path) -> None:
    path = tmp_path / "flat.csv"
    path.write_text("\n".join(["0.25"] * 5000) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model), "--fs", "360")
    assert_one_line_error(code, err, "flat.csv", "flat-line")


def test_rate_absent(tmp_path: Path, ecg_model: Path) -> None:
    from streamer.ecg.readers import read_recording

    x = read_recording(mitdb_record("106")).signal[:3600]
    path = tmp_path / "norate.csv"
    path.write_text("\n".join(f"{v:.4f}" for v in x) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model))
    assert_one_line_error(code, err, "norate.csv", "--fs")


def test_rate_too_low(tmp_path: Path, ecg_model: Path) -> None:
    path, lines = _csv_from_record(tmp_path)
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model), "--fs", "50")
    assert_one_line_error(code, err, "ecg.csv", "--fs 50 Hz disagrees with the time column")
    # a time column gives the rate; give a slow one instead
    lines = ["time,mlii"] + [f"{i / 50:.6f},{ln.split(',')[1]}" for i, ln in enumerate(lines[1:])]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model))
    assert_one_line_error(code, err, "ecg.csv", "below 100 Hz")


def test_stdin_stops_mid_stream(tmp_path: Path, ecg_model: Path) -> None:
    """A writer killed mid-line: the beats before are scored, the summary is written, exit is non-zero."""
    from streamer.ecg.readers import read_recording

    x = read_recording(mitdb_record("106")).signal[: 360 * 30]
    text = "\n".join(f"{v:.3f}" for v in x) + "\n-0.1"  # last line cut short, no newline
    summary = tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "ecg", "-", "--fs", "360", "--model",
                           str(ecg_model), "--summary", str(summary)], input=text.encode(),
                          capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert_one_line_error(proc.returncode, err, "-", "stopped mid-line")
    data = json.loads(summary.read_text())
    assert data["beats"] > 20  # ~30 s of a ~70 bpm record were scored before the cut
    assert data["error"] and "mid-line" in data["error"]


def test_model_not_onnx(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_text("this is not a model\n")
    code, _, err = run_cli("ecg", str(mitdb_record("106")), "--model", str(fake), "--speed", "max")
    assert_one_line_error(code, err, "model.onnx", "not a readable ONNX model")


def _model_with(model: Path, dest: Path, key: str, change: Callable[[Any], Any]) -> Path:
    """A copy of a real model with one metadata value changed."""
    import onnx

    proto = onnx.load(str(model))
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = json.dumps(change(json.loads(prop.value)))
    onnx.save(proto, str(dest))
    return dest


def test_model_of_wrong_task(tmp_path: Path, ecg_model: Path) -> None:
    wrong = _model_with(ecg_model, tmp_path / "audio.onnx", "task", lambda _: "audio-codec")
    code, _, err = run_cli("ecg", str(mitdb_record("106")), "--model", str(wrong), "--speed", "max")
    assert_one_line_error(code, err, "audio.onnx", "audio-codec")


def test_model_of_wrong_shape(tmp_path: Path, ecg_model: Path) -> None:
    wrong = _model_with(ecg_model, tmp_path / "short.onnx", "beat", lambda beat: {**beat, "length": 100})
    code, _, err = run_cli("ecg", str(mitdb_record("106")), "--model", str(wrong), "--speed", "max")
    assert_one_line_error(code, err, "short.onnx", "values per item")


def test_missing_record(tmp_path: Path, ecg_model: Path) -> None:
    code, _, err = run_cli("ecg", str(tmp_path / "nothere"), "--model", str(ecg_model))
    assert_one_line_error(code, err, "nothere.hea", "no such")


def test_training_without_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    code, _, err = run_cli("train", "ecg", "--out", "unused")
    assert_one_line_error(code, err, "aestream[train]")


def test_edf_roundtrip_and_bad_edf(tmp_path: Path, ecg_model: Path) -> None:
    """A real record written to EDF reads back (in mV); a damaged EDF is one clear line."""
    import pyedflib

    from streamer.ecg.readers import read_recording

    x = read_recording(mitdb_record("106")).signal[: 360 * 20]
    path = tmp_path / "ecg.edf"
    with pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": "MLII", "dimension": "uV", "sample_frequency": 360,
                             "physical_max": 10000, "physical_min": -10000,
                             "digital_max": 32767, "digital_min": -32768}])
        w.writeSamples([x * 1000.0])
    rec = read_recording(path)
    assert rec.fs == 360 and rec.lead == "MLII" and rec.lead_index == 0
    assert np.max(np.abs(rec.signal - x)) < 0.01  # back in mV, within EDF's 16-bit resolution
    shutil.copy(path, tmp_path / "bad.edf")
    (tmp_path / "bad.edf").write_bytes(path.read_bytes()[:300])
    code, _, err = run_cli("ecg", str(tmp_path / "bad.edf"), "--model", str(ecg_model))
    assert_one_line_error(code, err, "bad.edf")


def test_calibrate_method_without_calibrate(ecg_model: Path) -> None:
    """The method of a calibration that does not happen would be ignored: refused, in the CLI and the library."""
    code, _, err = run_cli("ecg", str(mitdb_record("106")), "--model", str(ecg_model),
                           "--calibrate-method", "percentile:99")
    assert_one_line_error(code, err, "--calibrate-method", "only with --calibrate SECONDS")
    from streamer.core.errors import StreamError
    from streamer.core.model import load_model

    with pytest.raises(StreamError, match="calibrate_method applies only with calibrate_s > 0"):
        load_model(ecg_model).stream(rate=360, calibrate_method="percentile:99")
    load_model(ecg_model).stream(rate=360, calibrate_s=60, calibrate_method="percentile:99")  # with it: fine


@pytest.mark.parametrize("args, needles", [
    (["ecg", "-", "--fs", "360", "--lead", "1"], ["--lead", "does not apply to stdin"]),
    (["ecg", "-", "--fs", "360", "--speed", "10"], ["--speed", "does not apply to stdin"]),
    (["ecg", "RECORD", "--fs", "250"], ["--fs", "does not apply to", "gives its own rate"]),
    (["ecg", "RECORD", "--threshold", "5", "--calibrate", "60"], ["--threshold", "not both"]),
    (["audio", "--file", "samples/audio/bach.wav", "--seconds", "3"], ["--seconds", "does not apply to a file"]),
    (["audio", "--speed", "2"], ["--speed", "does not apply to a live input device"]),
    (["audio", "--file", "samples/audio/bach.wav", "--play-device", "1"], ["--play-device", "only with --play"]),
    (["images", "samples/images", "--speed", "1"], ["--speed", "does not apply to a folder of images"]),
    (["images", "samples/images", "--seed", "3"], ["--seed", "without --add-noise"]),
    (["images", "samples/images", "--add-noise", "0.5", "--clean", "samples/images/clean"], ["--clean", "one of"]),
    (["images", "samples/images", "--camera", "0"], ["--camera", "not both"]),
    (["images", "--camera", "0", "--watch"], ["--watch", "does not apply to a camera"]),
    (["images", "--camera", "0", "--batch", "8"], ["--batch", "does not apply to a camera"]),
    (["watch", "--once", "--interval", "5"], ["--interval", "does not apply to one screen"]),
])
def test_options_that_do_not_apply_are_refused(args: list[str], needles: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An option the chosen source would ignore is refused in one line naming it (before anything is opened:
    no camera, device or broker is needed to get the error)."""
    from .conftest import ROOT

    monkeypatch.chdir(ROOT)
    args = [str(mitdb_record("106")) if a == "RECORD" else a for a in args]
    code, _, err = run_cli(*args)
    assert_one_line_error(code, err, *needles)


def test_csv_with_every_sample_missing(tmp_path: Path, ecg_model: Path) -> None:
    path = tmp_path / "gone.csv"
    path.write_text("\n".join(["nan"] * 5000) + "\n")
    code, _, err = run_cli("ecg", str(path), "--model", str(ecg_model), "--fs", "360")
    assert_one_line_error(code, err, "gone.csv", "no valid samples")


@pytest.mark.parametrize(("args", "option", "problem"), [
    (["ecg", "{rec}", "--fs", "1e8"], "--fs", "out of range"),  # would never finish
    (["ecg", "{rec}", "--fs", "inf"], "--fs", "not a finite number"),
    (["ecg", "{rec}", "--threshold", "nan"], "--threshold", "not a finite number"),  # nothing could be flagged
    (["ecg", "{rec}", "--calibrate", "nan"], "--calibrate", "not a finite number"),
    (["ecg", "{rec}", "--calibrate", "10", "--calibrate-method", "percentile:995"], "--calibrate-method",
     "between 0 and 100"),  # refused at start, not when the calibration ends
    (["ecg", "{rec}", "--speed", "1e-300"], "--speed", "out of range"),
    (["ecg", "{rec}", "--threads", "1000"], "--threads", "out of range"),
    (["images", "--camera", "-1"], "--camera", "out of range"),  # crashed OpenCV with a segmentation fault
    (["images", "{rec}", "--add-noise", "nan"], "--add-noise", "not a finite number"),
    (["audio", "--seconds", "inf"], "--seconds", "not a finite number"),
    (["mix", "a.wav", "b.wav", "--weights", "1e6", "1", "--out", "m.wav"], "--weights", "out of range"),  # silence
])
def test_option_values_are_checked_when_the_command_starts(record_copy: Path, args: list[str], option: str,
                                                           problem: str) -> None:
    """Every numeric option is finite and in the range the program can honour, checked before anything runs:
    one line naming the option and the problem, exit 2, no traceback."""
    code, _, err = run_cli(*[a.format(rec=record_copy) for a in args])
    assert code == 2
    assert_one_line_error(code, err, option, problem)


def test_a_wfdb_header_with_an_absurd_rate_is_refused(record_copy: Path, ecg_model: Path) -> None:
    """A header whose rate field lost a space (360 -> 3600000000) is refused at once, not replayed forever."""
    hea = record_copy.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    fields = first.split()
    fields[2] = "3600000000"
    hea.write_text("\n".join([" ".join(fields), *rest]) + "\n")
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--speed", "max")
    assert_one_line_error(code, err, "r.hea", "above 100000 Hz")


@pytest.mark.parametrize(("options", "problem"), [({"threshold": float("nan")}, "threshold must be a finite"),
                                                  ({"calibrate_s": float("nan")}, "calibrate_s must be a finite"),
                                                  ({"calibrate_s": 10, "calibrate_method": "percentile:995"},
                                                   "between 0 and 100"),
                                                  ({}, "too high for an ECG")])
def test_the_library_checks_stream_options_too(ecg_model: Path, options: dict[str, object], problem: str) -> None:
    import streamer
    from streamer.core.errors import StreamError

    rate = 1e8 if not options else 360
    with pytest.raises(StreamError, match=problem):
        streamer.load_model(ecg_model).stream(rate=rate, **options)


def test_outputs_never_overwrite_inputs(tmp_path: Path, record_copy: Path, ecg_model: Path) -> None:
    """An output naming an input (the same file, a link to it, a WFDB record's part, the image folder itself) is
    refused before anything is written, and the input is left as it was."""
    from tests.conftest import ROOT

    wav = tmp_path / "piece.wav"
    shutil.copy(ROOT / "samples" / "audio" / "bach.wav", wav)
    (tmp_path / "link.wav").symlink_to(wav)
    images = tmp_path / "img"
    images.mkdir()
    shutil.copy(next((ROOT / "samples" / "images").glob("*.png")), images)
    before = {p: p.read_bytes() for p in (wav, record_copy.with_suffix(".dat"), record_copy.with_suffix(".hea"))}
    cases = [
        (["audio", "--file", str(wav), "--out", str(tmp_path / "link.wav"), "--speed", "max"], "--out"),
        (["encode", str(wav), "-o", str(wav)], "--out"),
        (["mix", str(wav), str(wav), "--out", str(wav)], "--out"),
        (["ecg", str(record_copy), "--model", str(ecg_model), "--events", str(record_copy.with_suffix(".dat"))],
         "--events"),
        (["ecg", str(record_copy.with_suffix(".hea")), "--summary", str(record_copy.with_suffix(".hea"))],
         "--summary"),
        (["images", str(images), "--out", str(images)], "--out"),
    ]
    for args, option in cases:
        code, _, err = run_cli(*args)
        assert_one_line_error(code, err, option, "is an input of this run")
    assert all(p.read_bytes() == data for p, data in before.items())


@pytest.mark.parametrize("companion", ["/etc/passwd", "../music.decoder.onnx", "sub/music.decoder.onnx"])
def test_a_models_companions_stay_in_its_folder(tmp_path: Path, companion: str) -> None:
    """A codec whose metadata names its decoder by a path (absolute, `../`, a sub-folder) is refused before the
    path is looked at: a model file loads nothing from elsewhere and tells nothing about what exists."""
    import json
    import shutil

    import onnx

    from tests.conftest import MODELS, ROOT

    model = onnx.load(str(MODELS / "music.onnx"))
    for prop in model.metadata_props:
        if prop.key == "companions":
            prop.value = json.dumps({**json.loads(prop.value), "decoder": companion})
    path = tmp_path / "music.onnx"
    onnx.save(model, str(path))
    shutil.copy(MODELS / "music.decoder.onnx", tmp_path / "music.decoder.onnx")
    codes = tmp_path / "codes.npz"
    code, _, err = run_cli("encode", str(ROOT / "samples" / "audio" / "bach.wav"), "-o", str(codes))
    assert code == 0, err
    code, _, err = run_cli("decode", str(codes), "-o", str(tmp_path / "out.wav"), "--model", str(path))
    assert_one_line_error(code, err, "music.onnx", "must be a file name in the model's folder")


def test_model_metadata_never_reaches_the_terminal_as_control_codes(tmp_path: Path, record_copy: Path) -> None:
    """A model whose name carries escape sequences (set the window title, clear the screen): the summary shows
    them as `?`, never as the codes themselves."""
    import onnx

    from tests.conftest import MODELS

    model = onnx.load(str(MODELS / "ecg.onnx"))
    for prop in model.metadata_props:
        if prop.key == "name":
            prop.value = "ecg\x1b]0;PWNED\x07\x1b[2J"
    path = tmp_path / "evil.onnx"
    onnx.save(model, str(path))
    code, out, err = run_cli("ecg", str(record_copy), "--model", str(path), "--speed", "max", "--no-dashboard")
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "ecg?]0;PWNED??[2J" in out


def test_csv_as_spreadsheets_write_it(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark keeps its time column, and `;` cells with decimal commas are read as numbers,
    not cut at the comma: both give the record's own samples and rate."""
    from streamer.ecg.readers import read_recording

    x = read_recording(mitdb_record("100")).signal[:3600]
    rows = [f"{i / 360:.6f},{v:.4f}" for i, v in enumerate(x)]
    bom, semi = tmp_path / "bom.csv", tmp_path / "semi.csv"
    bom.write_text("time,mlii\n" + "\n".join(rows) + "\n", encoding="utf-8-sig")
    semi.write_text("time;mlii\n" + "\n".join(r.replace(",", ";").replace(".", ",") for r in rows) + "\n")
    for path in (bom, semi):
        rec = read_recording(path)
        assert rec.fs == pytest.approx(360, rel=1e-4)
        np.testing.assert_allclose(rec.signal, np.round(x, 4))


def test_a_folder_with_brackets_in_its_name_is_a_folder(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    folder = tmp_path / "scan [2]"
    folder.mkdir()
    for png in sorted((ROOT / "samples" / "images").glob("*.png"))[:3]:
        shutil.copy(png, folder)
    summary = tmp_path / "s.json"
    code, _, err = run_cli("images", str(folder), "--no-dashboard", "--summary", str(summary))
    assert code == 0, err
    assert json.loads(summary.read_text())["images"] == 3


def test_a_calibration_longer_than_the_record_is_said(record_copy: Path, ecg_model: Path, tmp_path: Path) -> None:
    """--calibrate longer than the 60 s record: nothing can be judged, and the summary says why instead of
    quoting the model's threshold as if it had been used."""
    summary = tmp_path / "s.json"
    code, _, err = run_cli("ecg", str(record_copy), "--model", str(ecg_model), "--calibrate", "600", "--speed", "max",
                           "--no-dashboard", "--summary", str(summary))
    assert code == 0, err
    s = json.loads(summary.read_text())
    assert s["beats_judged"] == 0 and "calibration never finished" in s["threshold"]["source"]
    assert any("before the calibration (600 s) finished" in w for w in s["warnings"])


def test_damaged_annotations_are_not_scored_against(tmp_path: Path, ecg_model: Path) -> None:
    """An empty `.atr` gives no evaluation (said in the summary), not Se 0 / PPV 0; one cut short is scored only
    over the time it covers, and the summary says how far that is."""
    src = mitdb_record("100")
    for suffix in (".hea", ".dat"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"100{suffix}")
    atr = (src.with_suffix(".atr")).read_bytes()
    summary = tmp_path / "s.json"
    results = {}
    for name, data in (("empty", b""), ("cut", atr[:3000])):
        (tmp_path / "100.atr").write_bytes(data)
        code, _, err = run_cli("ecg", str(tmp_path / "100"), "--model", str(ecg_model), "--speed", "max",
                               "--no-dashboard", "--summary", str(summary))
        assert code == 0, err
        results[name] = json.loads(summary.read_text())
    assert "rpeaks" not in results["empty"] and "no beat annotations" in results["empty"]["reference"]
    cut = results["cut"]
    assert "the annotations end at" in cut["reference"]
    assert cut["rpeaks"]["sensitivity"] > 99 and cut["rpeaks"]["ppv"] > 99  # not the thousands of beats after it


def test_a_ppm_among_the_images_is_written_like_the_others(tmp_path: Path) -> None:
    """A folder holding a `.ppm` (a documented input; OpenCV writes that format only from colour): every image is
    denoised and written under its own name, the `.ppm` as a `.ppm`, and nothing stops the run."""
    import cv2

    from tests.conftest import ROOT

    folder, out, summary = tmp_path / "in", tmp_path / "out", tmp_path / "s.json"
    folder.mkdir()
    pngs = sorted((ROOT / "samples" / "images").glob("*.png"))[:3]
    for png in pngs:
        shutil.copy(png, folder)
    cv2.imwrite(str(folder / "b.ppm"), cv2.cvtColor(cv2.imread(str(pngs[0]), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR))
    code, _, err = run_cli("images", str(folder), "--out", str(out), "--no-dashboard", "--summary", str(summary))
    assert code == 0 and "ERROR" not in err, err
    assert json.loads(summary.read_text())["images"] == 4
    assert (out / "b.ppm").is_file() and cv2.imread(str(out / "b.ppm")) is not None


def test_the_image_sink_does_not_follow_a_link_out_of_its_folder(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    (src / "sub").mkdir(parents=True)
    out.mkdir()
    elsewhere.mkdir()
    shutil.copy(next((ROOT / "samples" / "images").glob("*.png")), src / "sub")
    (out / "sub").symlink_to(elsewhere)
    code, _, err = run_cli("images", str(src), "--out", str(out), "--no-dashboard")
    assert_one_line_error(code, err, "leads outside the output folder")
    assert not any(elsewhere.iterdir())


def test_stdin_with_an_endless_line_ends_at_once(ecg_model: Path, tmp_path: Path) -> None:
    """A few real samples, then 20 MB with no newline (not one sample per line): one line naming stdin and the
    problem, at once (each read used to re-join the growing line: minutes for 100 MB), the summary written."""

    from streamer.ecg.readers import read_recording
    from tests.conftest import mitdb_record

    x = read_recording(mitdb_record("106")).signal[:3600]
    data = ("\n".join(f"{v:.4f}" for v in x) + "\n").encode() + b"7" * 20_000_000
    summary = tmp_path / "s.json"
    result = CliRunner().invoke(main, ["ecg", "-", "--fs", "360", "--model", str(ecg_model), "--no-dashboard",
                                       "--summary", str(summary)], input=data)
    assert_one_line_error(result.exit_code, result.stderr, "-:", "longer than 4096 bytes")
    assert json.loads(summary.read_text())["beats"] > 5  # the samples before it were scored


# --- model metadata: one schema per task, checked when the model is loaded ------------------------------------

SCHEMA_CASES = [  # (model, key, change, what the one line names)
    ("music.onnx", "sample_rate_hz", lambda _: 1e30, "sample_rate_hz"),  # was a segmentation fault
    ("music.onnx", "sample_rate_hz", lambda _: 1e9, "sample_rate_hz"),  # was std::bad_alloc
    ("music.onnx", "sample_rate_hz", lambda _: 0, "sample_rate_hz"),  # was a ValueError traceback
    ("music.onnx", "frame", lambda f: {**f, "length": 0}, "frame.length"),
    ("music.onnx", "normalisation", lambda n: {**n, "target": float("inf")}, "normalisation.target"),
    ("ecg.onnx", "beat", lambda _: "hello", "beat must be an object"),
    ("ecg.onnx", "beat", lambda b: {**b, "window": {"kind": "fixed", "pre_s": 1e9, "post_s": 0.2}},
     "beat.window.pre_s"),
    ("ecg.onnx", "threshold", lambda t: {**t, "value": float("nan")}, "threshold.value"),
    ("ecg.onnx", "normalisation", lambda n: {"steps": [{**n["steps"][-1], "beats": -3}]},
     "steps[0].beats"),
    ("ecg.onnx", "features", lambda f: [*f, {"name": "rm -rf", "size": 1}], "features[3].name"),
    ("denoise.onnx", "image", lambda i: {**i, "max_side": 10**6}, "image.max_side"),
    ("denoise-dense.onnx", "image", lambda i: {**i, "height": "32"}, "image.height"),
    ("denoise.onnx", "aestream_format", lambda _: 99, "aestream_format"),
]


@pytest.mark.parametrize(("name", "key", "change", "needle"), SCHEMA_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in SCHEMA_CASES])
def test_model_metadata_is_checked_against_its_tasks_schema(tmp_path: Path, name: str, key: str,
                                                            change: Callable[[Any], Any], needle: str) -> None:
    """A value of the wrong type or out of range is refused at load with one line naming the key, before the
    input is read; `inspect` still shows the model, with the problem first, and exits 1."""
    from tests.conftest import MODELS, ROOT

    model = _model_with(MODELS / name, tmp_path / name, key, change)
    images = ["images", str(ROOT / "samples" / "images"), "--out", str(tmp_path / "o")]
    command = {"music.onnx": ["audio", "--file", str(ROOT / "samples" / "audio" / "bach.wav"),
                              "--out", str(tmp_path / "o.wav"), "--speed", "max"],
               "ecg.onnx": ["ecg", str(mitdb_record("106")), "--speed", "max"],
               "denoise.onnx": images, "denoise-dense.onnx": images}
    code, _, err = run_cli(*command[name], "--model", str(model), "--no-dashboard")
    assert_one_line_error(code, err, name, needle)
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "o").exists()  # refused before anything ran
    code, out, _ = run_cli("inspect", str(model))
    assert code == 1
    assert out.splitlines()[1].startswith("this model cannot be used: metadata ") and needle in out


def test_every_shipped_model_meets_the_schema() -> None:
    from streamer.cli.inspect import read_metadata
    from tests.conftest import MODELS

    for path in sorted(MODELS.glob("*.onnx")):
        assert read_metadata(path)[1] == [], path


def test_metadata_too_large_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """5 MB of metadata took `inspect` 8 s and 50 MB never finished; now both it and a run refuse it at once."""
    from tests.conftest import MODELS, ROOT

    model = _model_with(MODELS / "denoise.onnx", tmp_path / "big.onnx", "metrics", lambda _: {"x": "y" * 5_000_000})
    code, _, err = run_cli("inspect", str(model))
    assert_one_line_error(code, err, "big.onnx", "metadata is 5.0 MB")
    code, _, err = run_cli("images", str(ROOT / "samples" / "images"), "--model", str(model),
                           "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "big.onnx", "more than the 1.0 MB")


def test_a_graph_with_a_fixed_batch_is_refused_at_load(tmp_path: Path) -> None:
    """The engine batches across streams: a graph fixed to batch 1 used to fail only when a batch of 2 came."""
    import onnx

    from tests.conftest import ROOT
    from tests.onnx_models import gain_model

    path = gain_model(tmp_path / "fixed.onnx")
    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(proto, str(path))
    code, _, err = run_cli("audio", "--file", str(ROOT / "samples" / "audio" / "bach.wav"), "--model", str(path),
                           "--out", str(tmp_path / "o.wav"))
    assert_one_line_error(code, err, "fixed.onnx", "fixed batch size 1")


# --- memory bounded by design ------------------------------------------------------------------------------------

def test_an_image_declaring_a_huge_size_is_skipped_before_decoding(tmp_path: Path) -> None:
    """A PNG whose header claims 100000x100000 among good images: skipped (named, with the cap and the option
    that raises it), the others denoised; it used to end the whole run."""
    import struct

    from tests.conftest import ROOT

    folder = tmp_path / "in"
    shutil.copytree(ROOT / "samples" / "images", folder, ignore=shutil.ignore_patterns("clean", "*.md"))
    data = bytearray((folder / "test_00000.png").read_bytes())
    struct.pack_into(">II", data, 16, 100_000, 100_000)  # IHDR width, height
    (folder / "claims_huge.png").write_bytes(bytes(data))
    summary = tmp_path / "s.json"
    code, _, err = run_cli("images", str(folder), "--out", str(tmp_path / "o"), "--no-dashboard",
                           "--summary", str(summary))
    assert code == 0, err
    result = json.loads(summary.read_text())
    assert result["images"] == len(list(folder.glob("test_*.png")))
    assert result["skipped"] == ["claims_huge.png: 100000x100000 is 10,000,000,000 pixels, more than the "
                                 "16,777,216 allowed (--max-pixels)"]
    code, _, err = run_cli("images", str(folder / "test_00000.png"), "--out", str(tmp_path / "o2"),
                           "--max-pixels", "1000")  # the sample digits are 32x32
    assert_one_line_error(code, err, "test_00000.png", "1,024 pixels", "1,000 allowed (--max-pixels)")


def _gzip_idx(path: Path, dims: tuple[int, ...], payload: bytes) -> Path:
    import gzip
    import struct

    path.write_bytes(gzip.compress(b"\x00\x00\x08" + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
                                   + payload))
    return path


def test_array_files_declaring_huge_shapes_are_refused_before_reading(tmp_path: Path) -> None:
    """An IDX file claiming one 32768x32768 image (the 1 MB gzip took 6 GB, then a traceback), an .npy
    claiming 50000 images of 4096x4096, and a cut .npz: one line each, nothing decompressed."""
    import io
    import zipfile

    bomb = _gzip_idx(tmp_path / "bomb-idx3-ubyte.gz", (1, 32768, 32768), b"\x00" * 1024)
    code, _, err = run_cli("images", str(bomb), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "bomb-idx3-ubyte.gz", "1x32768x32768", "--max-pixels")
    npy = tmp_path / "many.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (50_000, 4096, 4096)})
    npy.write_bytes(b"\x93NUMPY\x01\x00" + header.getvalue()[8:])
    code, _, err = run_cli("images", str(npy), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "many.npy", "in all", "split the file")
    good = tmp_path / "good.npz"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("images.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:])
    code, _, err = run_cli("images", str(good), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "good.npz", "array 'images'", "in all")
    digits = tmp_path / "digits.npz"
    np.savez(digits, images=np.zeros((4, 28, 28), np.uint8))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(digits.read_bytes()[:200])
    code, _, err = run_cli("images", str(cut), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "cut.npz", "not a readable .npz")


def test_a_large_batch_is_run_in_parts_with_the_same_results(ecg_model: Path) -> None:
    """Model calls are split above MAX_CALL_VALUES input values (bounded activations); the results are those
    of one call."""
    from streamer.core.limits import MAX_CALL_VALUES
    from streamer.core.model import load_model
    from streamer.ecg.readers import read_ecg

    model = load_model(ecg_model)
    width = int(model.input_shape[1])
    signal = read_ecg(mitdb_record("106")).signal
    n = 3 * MAX_CALL_VALUES // width + 7
    batch = np.lib.stride_tricks.sliding_window_view(signal[: n + width], width)[:n].astype(np.float32)
    whole = model.session.run(None, {model.input_name: batch})[0]
    assert np.array_equal(model.run(batch), whole)


def test_a_hop_too_small_to_be_useful_is_refused(tmp_path: Path) -> None:
    """--hop 1 (4096 frames per 4096 samples) reached 5.8 GB and a MemoryError."""
    from tests.conftest import ROOT

    code, _, err = run_cli("audio", "--file", str(ROOT / "samples" / "audio" / "bach.wav"), "--hop", "1",
                           "--out", str(tmp_path / "o.wav"))
    assert_one_line_error(code, err, "--hop", "between 64 and 2048")


CODES_DAMAGE = [  # (what is changed in a real codes file, what the one line says)
    (lambda z: {"values": z["values"][:0], "positions": z["positions"][:0]}, "codes of shape (0, 1024)"),
    (lambda z: {"values": z["values"][0], "positions": z["positions"][0]}, "must have one 2-D shape"),
    (lambda z: {"values": np.where(np.arange(z["values"].size).reshape(z["values"].shape) == 7, np.nan,
                                   z["values"])}, "NaN or infinite"),
    (lambda z: {"positions": np.full_like(z["positions"], 60000)}, "positions must be whole numbers in [0, 4608)"),
    (lambda z: {"n_samples": np.array(10 ** 12)}, "cannot hold 1000000000000 samples"),
    (lambda z: {"sample_rate_hz": np.array(10 ** 9)}, "at 1000000000 Hz is not an audio codec's"),
]


@pytest.mark.parametrize(("change", "needle"), CODES_DAMAGE, ids=[c[1][:20] for c in CODES_DAMAGE])
def test_crafted_codes_files_are_refused_in_one_line(tmp_path: Path, change: Callable[[Any], Any],
                                                     needle: str) -> None:
    """Codes files with zero frames, 1-D codes, NaN, positions out of range, sizes that disagree: one line each
    (they ended in tracebacks or a crash of the decoder graph)."""
    from tests.conftest import ROOT

    good = tmp_path / "good.npz"
    code, _, err = run_cli("encode", str(ROOT / "samples" / "audio" / "bach.wav"), "-o", str(good))
    assert code == 0, err
    fields = dict(np.load(good))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{**fields, **change(fields)})
    code, _, err = run_cli("decode", str(bad), "-o", str(tmp_path / "o.wav"))
    assert_one_line_error(code, err, "bad.npz", needle)
    assert not (tmp_path / "o.wav").exists()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, _, err = run_cli("decode", str(cut), "-o", str(tmp_path / "o.wav"))
    assert_one_line_error(code, err, "cut.npz", "not a readable codes file")


def test_a_wide_image_on_the_dashboard(tmp_path: Path) -> None:
    """An image 32 px high and 4800 wide is drawn (one row of half blocks), not a traceback from the dashboard."""
    import cv2
    from rich.console import Console

    from streamer.ui.dashboard import pixel_art
    from tests.conftest import ROOT

    digit = cv2.imread(str(ROOT / "samples" / "images" / "test_00000.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    wide = np.tile(digit, (1, 150))
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(pixel_art(wide, 16))
    lines = console.export_text().splitlines()
    assert len(lines) == 1 and len(lines[0]) == 16


def test_the_schema_knows_every_beat_feature_the_framer_does() -> None:
    """The metadata schema (core) lists the ECG beat features itself, not importing the ECG package: the two
    lists must stay the same."""
    from streamer.core.metaschema import BEAT_FEATURES
    from streamer.ecg.beats import RR_FEATURES

    assert set(BEAT_FEATURES) == {"beat", *RR_FEATURES}
