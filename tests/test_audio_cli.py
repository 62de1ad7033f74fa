"""`streamer audio` end to end: a live virtual microphone, files, and bad input (one line, exit != 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from click.testing import CliRunner

from streamer.cli.main import main
from tests.audio_fixtures import bach_fixture, load_stereo
from tests.conftest import in_foreground
from tests.fakemic import MIC, ROOT, SPEAKER, device_env, make_home, write_raw
from tests.onnx_models import dct_codec, gain_model

pytest.importorskip("sounddevice")


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gain_model(tmp_path_factory.mktemp("models") / "identity.onnx", 1.0)


@pytest.fixture(scope="module")
def mic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """(HOME with a 48 kHz stereo float32 virtual microphone playing real music, its file, the samples)."""
    x, rate = load_stereo(bach_fixture(tmp_path_factory))
    base = tmp_path_factory.mktemp("mic48k")
    samples = write_raw(base / "in.raw", soxr.resample(x, rate, 48000), "FLOAT_LE")
    return make_home(base / "home", rate=48000, channels=2, fmt="FLOAT_LE"), base / "in.raw", samples


def _streamer(args: list[str], home: Path, mic_file: Path | None = None, speaker: Path | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer.cli.main", *args], env=device_env(home, mic_file, speaker),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _one_line(result: subprocess.CompletedProcess[str] | object, *needles: str) -> None:
    code = getattr(result, "returncode", getattr(result, "exit_code", None))
    err = getattr(result, "stderr", None) or getattr(result, "output", "")
    assert code not in (0, None), err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_live_microphone_to_wav_and_speakers(mic: tuple[Path, Path, np.ndarray], identity: Path,
                                             tmp_path: Path) -> None:
    """A real sounddevice InputStream at 48 kHz stereo -> 8 kHz mono frames -> identity model -> WAV: the
    reconstruction equals the microphone's signal, converted once.

    The device source yields its own 48 kHz stereo blocks, cut at 3 s of device time; the stream converts
    them at its edge and flushes its resampler at the end, so the reference is the one-shot conversion of
    exactly those 3 s."""
    home, raw, samples = mic
    speaker = tmp_path / "speaker.raw"
    r = _streamer(["audio", "--device", MIC, "--seconds", "3", "--model", str(identity), "--hop", "2048",
                   "--out", str(tmp_path / "live.wav"), "--summary", str(tmp_path / "s.json"), "--play",
                   "--play-device", SPEAKER, "--no-dashboard"], home, raw, speaker)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["device"]["name"] == MIC and s["device"]["rate"] == 48000 and s["device"]["channels"] == 2
    assert s["samples_out"] == 3 * 8000 and s["frames"] == -(-(3 * 8000 + 2048) // 2048)
    assert s["peak_gain"].startswith("running peak")
    out, rate = sf.read(str(tmp_path / "live.wav"))
    expected = soxr.resample(samples[:3 * 48000].astype(np.float64).mean(axis=1), 48000, 8000, quality="HQ")
    assert rate == 8000 and len(out) == len(expected)
    np.testing.assert_allclose(out, expected, atol=1e-4)  # 16-bit WAV
    # the virtual speaker is not paced: it reads silence between the player's buffers; drop it
    played = np.fromfile(speaker, dtype="<f4").reshape(-1, 2)[:, 0]
    played = soxr.resample(played[played != 0], 22050, 8000)
    assert len(played) > 20000 and np.corrcoef(played[:20000], out[:20000])[0, 1] > 0.99


def test_no_such_device(mic: tuple[Path, Path, np.ndarray], identity: Path) -> None:
    home, raw, _ = mic
    _one_line(_streamer(["audio", "--device", "7", "--model", str(identity)], home, raw), "no such input device")


def test_device_that_cannot_open(mic: tuple[Path, Path, np.ndarray], identity: Path) -> None:
    """The mic's file vanishes after PortAudio listed the device (an unplugged USB mic): every open fails."""
    home, raw, _ = mic
    code = ("import os, sys, sounddevice\n"  # PortAudio lists the devices now, while the file is there
            "os.environ['FAKEMIC_FILE'] = '/nonexistent/unplugged.raw'\n"
            "from streamer.cli.main import main\n"
            "main(sys.argv[1:])\n")
    r = subprocess.run([sys.executable, "-c", code, "audio", "--device", MIC, "--model", str(identity)],
                       env=device_env(home, raw), cwd=ROOT, capture_output=True, text=True, timeout=120)
    _one_line(r, MIC, "cannot open")


def test_file_replay_writes_the_reconstruction(music_wav: Path, tmp_path: Path) -> None:
    model = dct_codec(tmp_path)
    r = CliRunner().invoke(main, ["audio", "--file", str(music_wav), "--model", str(model), "--speed", "max",
                                  "--out", str(tmp_path / "r.wav"), "--summary", str(tmp_path / "s.json"),
                                  "--events", str(tmp_path / "e.jsonl"), "--no-dashboard"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s.json").read_text())
    for key in ("frames", "dropped", "duration_s", "realtime_factor", "latency_ms", "snr_db", "snr_db_median_frame"):
        assert key in s, key
    assert {"p50", "p99"} <= set(s["latency_ms"]) and 3 < s["snr_db"] < 40
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(events) == s["frames"] and np.median([e["snr_db"] for e in events]) == pytest.approx(
        s["snr_db_median_frame"], abs=1e-3)
    out, _ = sf.read(str(tmp_path / "r.wav"))
    assert len(out) == s["samples_out"]


def test_file_without_out_says_nothing_is_saved(tmp_path: Path, identity: Path) -> None:
    """No --out: a note on stderr at the start, and the summary says so (the run itself succeeds)."""
    sf.write(str(tmp_path / "tone.wav"), 0.5 * np.sin(np.arange(8000) * 0.3), 8000, subtype="PCM_16")
    r = CliRunner().invoke(main, ["audio", "--file", str(tmp_path / "tone.wav"), "--model", str(identity),
                                  "--speed", "max", "--summary", str(tmp_path / "s.json"), "--no-dashboard"])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines()[0] == "streamer: note: no --out: the reconstruction is not saved (nor played)"
    assert json.loads((tmp_path / "s.json").read_text())["out"] == "not saved (no --out)"
    assert "not saved (no --out)" in r.stdout  # the printed summary
    with_out = CliRunner().invoke(main, ["audio", "--file", str(tmp_path / "tone.wav"), "--model", str(identity),
                                         "--speed", "max", "--out", str(tmp_path / "r.wav"), "--no-dashboard"])
    assert with_out.exit_code == 0 and "note" not in with_out.stderr


def test_silent_file_reports_snr_undefined(tmp_path: Path, identity: Path) -> None:
    sf.write(str(tmp_path / "silence.wav"), np.zeros(8000 * 2), 8000, subtype="PCM_16")
    r = CliRunner().invoke(main, ["audio", "--file", str(tmp_path / "silence.wav"), "--model", str(identity),
                                  "--speed", "max", "--summary", str(tmp_path / "s.json"), "--no-dashboard"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["snr_db"] is None and "silent" in s["snr_note"] and s["samples_out"] == 16000


def test_bad_audio_files(tmp_path: Path, identity: Path, music_wav: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(music_wav.read_bytes()[: music_wav.stat().st_size // 2])
    runner = CliRunner()
    for path, needle in ((text, "not an audio file"), (cut, "truncated"), (tmp_path / "none.wav", "no such file")):
        _one_line(runner.invoke(main, ["audio", "--file", str(path), "--model", str(identity)]), str(path), needle)


def test_bad_options_and_models(tmp_path: Path, identity: Path, music_wav: Path) -> None:
    runner = CliRunner()
    ecg_model = ROOT / "samples" / "models" / "ecg.onnx"
    _one_line(runner.invoke(main, ["audio", "--file", str(music_wav), "--model", str(ecg_model)]),
              "needs 'audio-codec'")
    _one_line(runner.invoke(main, ["audio", "--file", str(music_wav), "--model", str(identity), "--hop", "3000"]),
              "--hop")
    # 0 is refused with the allowed range (never taken for the default), by the command and by the library
    _one_line(runner.invoke(main, ["audio", "--file", str(music_wav), "--model", str(identity), "--hop", "0"]),
              "--hop", "4096 (no overlap) or between 64 and 2048", "not 0")
    from streamer.core.errors import StreamError
    from streamer.core.model import load_model

    for bad in ({"hop": 0}, {"rate": 0}, {"channels": 0}):
        with pytest.raises(StreamError):
            load_model(identity).stream(**bad)
    _one_line(runner.invoke(main, ["audio", "--file", str(music_wav), "--device", "0", "--model", str(identity)]),
              "give one source")
    dct_codec(tmp_path)
    _one_line(runner.invoke(main, ["audio", "--file", str(music_wav), "--model", str(tmp_path / "dct.decoder.onnx")]),
              "decoder alone")


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_keeps_a_valid_wav_and_the_summary(music_wav: Path, tmp_path: Path, sig: str, code: int) -> None:
    """A real SIGINT (or SIGTERM) during a real-time replay: exit 130 (143), the WAV is playable and holds every
    finished sample."""
    import signal
    import time

    model = dct_codec(tmp_path)
    wav, summary, events = tmp_path / "r.wav", tmp_path / "s.json", tmp_path / "e.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "streamer.cli.main", "audio", "--file", str(music_wav), "--model",
                             str(model), "--speed", "4", "--hop", "2048", "--out", str(wav), "--events", str(events),
                             "--summary", str(summary)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=in_foreground)
    deadline = time.monotonic() + 60
    while (not events.exists() or len(events.read_text().splitlines()) < 6) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert b"Traceback" not in err and b"aestream summary" in out
    s = json.loads(summary.read_text())
    audio, rate = sf.read(str(wav))
    assert s["interrupted"] is True and 6 <= s["frames"] and s["samples_out"] == len(audio) > 0 and rate == 8000
    assert s["output_s"] < sf.info(str(music_wav)).duration - 1  # it really stopped early


def test_devices_lists_the_virtual_devices(mic: tuple[Path, Path, np.ndarray]) -> None:
    home, raw, _ = mic
    r = _streamer(["devices"], home, raw)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if MIC in ln or SPEAKER in ln]
    assert len(lines) == 2 and any("48000" in ln for ln in lines if MIC in ln)


def test_train_audio_command_on_own_files(tmp_path: Path, music_wav: Path) -> None:
    """`streamer train audio --data DIR`: three real clips -> all model files, loadable by the runtime."""
    audio, rate = sf.read(str(music_wav), dtype="float32")
    for i, part in enumerate(np.array_split(audio, 3)):
        sf.write(str(tmp_path / f"part{i}.wav"), part, rate)
    out = tmp_path / "models"
    r = CliRunner().invoke(main, ["train", "audio", "--data", str(tmp_path), "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    from streamer.audio.codec import companion
    from streamer.core.model import load_model
    from streamer.core.modelmeta import AUDIO_TASK

    model = load_model(out / "music.onnx", task=AUDIO_TASK)
    assert model.stream().describe()["frame"] == 4096  # the runtime streams it (the whole autoencoder)
    assert model.meta["training_data"]["split"] and companion(out / "music.onnx", "decoder").meta["part"] == "decoder"
    assert "wrote" in r.output
