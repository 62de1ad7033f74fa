"""Real PortAudio streams on the ALSA file-plugin device (tests/fakemic.py), fed with real music.

Each test runs its device code in a subprocess whose HOME holds the fake device's `.asoundrc`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

from .audio_fixtures import bach_fixture, load_stereo
from .conftest import in_foreground
from .fakemic import CLI_WRAPPER, MIC, ROOT, SPEAKER, device_env, make_home, run_python, write_raw
from .onnx_models import gain_model

pytest.importorskip("sounddevice")

MODEL_RATE = 8000  # Hz
CAPTURE_S = 4  # seconds captured per test: the fake device is not paced, so this takes milliseconds


@pytest.fixture(scope="session")
def bach(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bach_fixture(tmp_path_factory)


@pytest.fixture(scope="session")
def mic16k(bach: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """(HOME with a 16 kHz mono S16_LE fake mic, its raw file, the int16 samples in it)."""
    x, rate = load_stereo(bach)
    base = tmp_path_factory.mktemp("mic16k")
    pcm = write_raw(base / "in.raw", soxr.resample(x.mean(axis=1), rate, 16000))
    return make_home(base / "home", rate=16000, channels=1), base / "in.raw", pcm


def float_mic(bach: Path, base: Path, rate: int) -> tuple[Path, Path, np.ndarray]:
    """(HOME with a stereo float32 fake mic at `rate`, its raw file, the (n, 2) float32 samples in it)."""
    x, native = load_stereo(bach)
    samples = write_raw(base / "in.raw", soxr.resample(x, native, rate), "FLOAT_LE")
    return make_home(base / "home", rate=rate, channels=2, fmt="FLOAT_LE"), base / "in.raw", samples


@pytest.fixture(scope="session")
def mic16k_float(bach: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    return float_mic(bach, tmp_path_factory.mktemp("mic16kf"), 16000)


@pytest.fixture(scope="session")
def mic44k(bach: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    return float_mic(bach, tmp_path_factory.mktemp("mic44k"), 44100)


def run_ok(code: str, home: Path, mic: Path | None = None, *args: str, speaker: Path | None = None) -> str:
    result = run_python(code, home, mic, speaker, args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_cli_like(code: str, home: Path, mic: Path | None = None) -> tuple[int, str]:
    """Run `main()` as the CLI would; (exit code, stderr)."""
    result = run_python(CLI_WRAPPER + code + "\n_cli(main)\n", home, mic)
    return result.returncode, result.stderr


def assert_one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr  # no ALSA or PortAudio chatter either
    for needle in needles:
        assert needle in lines[0], lines[0]


CAPTURE = """
import sys, numpy as np
from streamer.audio.devices import DeviceSource
n, out = int(sys.argv[1]), sys.argv[2]
src = DeviceSource(sys.argv[3], 0.1, max_queue_s=120, max_frames=n)
starts, parts = [], []
for block in src.blocks():
    starts.append(block.start)
    parts.append(block.samples)
assert src.stream is None  # closed at the end of the stream
np.savez(out, x=np.concatenate(parts), starts=np.array(starts), lens=np.array([len(p) for p in parts]),
         dtype=str(parts[0].dtype), info=repr(src.device_info()), rate=src.rate, channels=src.channels)
"""


def capture(home: Path, mic: Path, n: int, tmp: Path, device: str = MIC) -> dict[str, np.ndarray]:
    """`n` frames of the device's own blocks: (n, channels) float32 at the device's own rate."""
    out = tmp / "capture.npz"
    run_ok(CAPTURE, home, mic, str(n), str(out), device)
    data = dict(np.load(out))
    assert np.array_equal(data["starts"], np.concatenate([[0], np.cumsum(data["lens"])[:-1]]))  # contiguous
    assert data["x"].shape == (n, int(data["channels"])) and str(data["dtype"]) == "float32"
    return data


def through_stream(data: dict[str, np.ndarray], model_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The captured blocks, as the device gave them, into a stream opened at the device's rate and channels
    (as `streamer audio --device` opens it): (the input it converted to mono at the model's rate, the
    identity model's reconstruction)."""
    from streamer.core.model import load_model

    stream = load_model(model_path).stream(rate=float(data["rate"]), channels=int(data["channels"]))
    events = []
    for block, start in zip(np.split(data["x"], np.cumsum(data["lens"])[:-1]), data["starts"]):
        events += stream.feed(block, start=int(start))
    events += stream.flush()
    assert [e.start for e in events] == list(np.cumsum([0] + [len(e.samples) for e in events])[:-1])
    return np.concatenate([e.reference for e in events]), np.concatenate([e.samples for e in events])


def test_fake_device_capture_is_bit_exact(mic16k: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    """The virtual device itself: a raw 16 kHz int16 InputStream returns the file that went in."""
    home, raw, pcm = mic16k
    code = """
import sys, numpy as np, sounddevice as sd
n = int(sys.argv[1])
got = []
with sd.InputStream(device="fakemic", samplerate=16000, channels=1, dtype="int16", blocksize=1000) as s:
    while sum(map(len, got)) < n:
        got.append(s.read(1000)[0][:, 0].copy())
np.save(sys.argv[2], np.concatenate(got)[:n])
"""
    n = CAPTURE_S * 16000
    run_ok(code, home, raw, str(n), str(tmp_path / "raw.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), pcm[:n])


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gain_model(tmp_path_factory.mktemp("models") / "identity.onnx", 1.0)


def test_device_source_at_device_rate_equals_file(mic16k_float: tuple[Path, Path, np.ndarray],
                                                  tmp_path: Path) -> None:
    """The source gives the device's own blocks: the file's stereo float32 samples, bit for bit."""
    home, raw, samples = mic16k_float
    n = CAPTURE_S * 16000
    data = capture(home, raw, n, tmp_path)
    assert "'rate': 16000.0" in str(data["info"]) and "'channels': 2" in str(data["info"])  # min(128, 2)
    assert float(data["rate"]) == 16000 and int(data["channels"]) == 2
    np.testing.assert_array_equal(data["x"], samples[:n])


def test_device_source_8k_matches_one_shot_resampling(mic16k_float: tuple[Path, Path, np.ndarray],
                                                      identity: Path, tmp_path: Path) -> None:
    """16 kHz stereo device blocks -> the stream's edge conversion -> 8 kHz mono: equal to converting the
    captured signal in one go."""
    home, raw, samples = mic16k_float
    n = CAPTURE_S * 16000
    got, recon = through_stream(capture(home, raw, n, tmp_path), identity)
    reference = soxr.resample(samples[:n].mean(axis=1, dtype=np.float32), 16000, MODEL_RATE, quality="HQ")
    assert len(got) == len(reference) == CAPTURE_S * MODEL_RATE
    lag = best_lag(got, reference, 50)
    assert lag == 0  # soxr compensates its delay: aligned from the first sample
    np.testing.assert_allclose(got, reference, atol=1e-6)
    np.testing.assert_allclose(recon, reference, atol=1e-6)  # and the identity model gives it back
    assert np.std(reference) > 0.01


def best_lag(x: np.ndarray, ref: np.ndarray, max_lag: int) -> int:
    """The shift of x against ref (in samples) with the smallest squared error."""
    n = len(ref) - 2 * max_lag
    errors = [np.sum((x[max_lag + k:max_lag + k + n] - ref[max_lag:max_lag + n]) ** 2)
              for k in range(-max_lag, max_lag + 1)]
    return int(np.argmin(errors)) - max_lag


def test_stereo_44k_device(mic44k: tuple[Path, Path, np.ndarray], identity: Path, tmp_path: Path) -> None:
    home, raw, samples = mic44k
    n = CAPTURE_S * 44100
    data = capture(home, raw, n, tmp_path)
    assert "'rate': 44100.0" in str(data["info"]) and "'channels': 2" in str(data["info"])
    np.testing.assert_array_equal(data["x"], samples[:n])
    got, recon = through_stream(data, identity)
    reference = soxr.resample(samples[:n].astype(np.float64).mean(axis=1), 44100, MODEL_RATE, quality="HQ")
    assert len(got) == len(reference) == CAPTURE_S * MODEL_RATE
    np.testing.assert_allclose(got, reference, atol=1e-5)
    np.testing.assert_allclose(recon, reference, atol=1e-5)
    left_only = soxr.resample(samples[:n, 0], 44100, MODEL_RATE)
    assert np.max(np.abs(got - left_only)) > 0.01  # it really mixed both channels


def test_list_and_print_devices(mic16k: tuple[Path, Path, np.ndarray]) -> None:
    home, raw, _ = mic16k
    code = """
import json
from rich.console import Console
from streamer.audio.devices import list_devices, print_devices, resolve_device
print(json.dumps({"devices": list_devices(), "by_index": resolve_device("0", "input")["name"],
                  "default": resolve_device(None, "input")["name"], "out": resolve_device("spk", "output")["name"]}))
print_devices(Console(width=120, force_terminal=False))
"""
    out = run_ok(code, home, raw)
    first, table = out.split("\n", 1)
    report = json.loads(first)
    mic = next(d for d in report["devices"] if d["name"] == MIC)
    assert mic["default_samplerate"] == 16000 and mic["max_input_channels"] > 0 and mic["hostapi"] == "ALSA"
    default = next(d for d in report["devices"] if d["default_input"])
    assert default["name"] == report["default"] == "default"
    assert report["by_index"] == report["devices"][0]["name"]
    assert report["out"] == SPEAKER
    assert MIC in table and SPEAKER in table and "16000 Hz" in table and "22050 Hz" in table and "> in" in table


def test_no_devices_at_all(tmp_path: Path) -> None:
    home = tmp_path / "home"  # no .asoundrc: this machine has no sound card
    home.mkdir()
    code = """
from rich.console import Console
from streamer.audio.devices import list_devices, print_devices, DeviceSource
assert list_devices() == []
print_devices(Console())
def main():
    DeviceSource(None, 0.1)
"""
    result = run_python(CLI_WRAPPER + code + "\n_cli(main)\n", home)
    assert "no audio devices found" in result.stdout
    assert_one_line_error(result.returncode, result.stderr, "no default input device", "streamer devices")


def test_no_such_device(mic16k: tuple[Path, Path, np.ndarray]) -> None:
    home, raw, _ = mic16k
    code, err = run_cli_like("def main():\n    from streamer.audio.devices import DeviceSource\n"
                             "    DeviceSource('7', 0.1)\n", home, raw)
    assert_one_line_error(code, err, "no such input device '7' (run `streamer devices`)")
    code, err = run_cli_like("def main():\n    from streamer.audio.devices import DeviceSource\n"
                             "    DeviceSource('usb microphone', 0.1)\n", home, raw)
    assert_one_line_error(code, err, "no such input device 'usb microphone'")
    code, err = run_cli_like("def main():\n    from streamer.audio.devices import Player\n"
                             "    Player('fake', 8000)\n", home, raw)
    assert_one_line_error(code, err, "output device 'fake' is ambiguous", MIC, SPEAKER)


def test_device_that_cannot_open_at_any_rate(mic16k: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    """The mic's file vanishes after PortAudio listed the device (an unplugged USB mic): every open fails."""
    home, raw, _ = mic16k
    code = """
import os, sounddevice  # PortAudio lists the devices now, while the file is there
from streamer.audio.devices import DeviceSource
os.environ["FAKEMIC_FILE"] = "/nonexistent/unplugged.raw"
def main():
    DeviceSource("fakemic", 0.1)
"""
    code_, err = run_cli_like(code, home, raw)
    assert_one_line_error(code_, err, "input device 0 'fakemic' cannot open at any rate",
                          "16000, 48000, 44100, 32000, 22050, 8000 Hz")


OVERFLOW = """
import json, time
from streamer.audio.devices import DeviceSource
src = DeviceSource("fakemic", 0.05, max_queue_s=0.2, seconds=2)
starts, n = [], 0
for block in src.blocks():
    assert block.start == n
    n += len(block.samples)
    time.sleep(0.01)  # a consumer slower than this (unpaced) device
print(json.dumps({"n": n, "rate": src.rate, "drops": src.drops()}))
"""


def test_overflow_is_counted_not_blocking(mic16k: tuple[Path, Path, np.ndarray]) -> None:
    home, raw, _ = mic16k
    report = json.loads(run_ok(OVERFLOW, home, raw))
    assert report["rate"] == 16000 and report["n"] == 2 * 16000  # 2 s at the device's own rate
    assert report["drops"].get("overflow", 0) > 0


INTERRUPTED = """
import numpy as np
from streamer.audio.devices import DeviceSource
src = DeviceSource("fakemic", 0.05, max_queue_s=1)
try:
    for block in src.blocks():
        print("block", flush=True)
        np.sum(np.arange(10**6))  # busy consumer
except KeyboardInterrupt:
    print("closed" if src.stream is None else "still open", flush=True)
    raise SystemExit(130)
"""


def test_ctrl_c_closes_the_stream(mic16k: tuple[Path, Path, np.ndarray]) -> None:
    home, raw, _ = mic16k
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], env=device_env(home, raw), cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, preexec_fn=in_foreground)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "block"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert out.strip().splitlines()[-1] == "closed"


# The fake speaker is not paced: it empties the buffer at once. So the whole clip is queued before playback
# starts (prebuffer longer than the clip; close() starts and drains it), and a second player, fed in small
# pieces with pauses, runs dry: underflows.
PLAY = """
import json, os, sys, time, numpy as np
from streamer.audio.devices import Player
x = np.load(sys.argv[1])
player = Player("fakespk", 8000, buffer_s=30, prebuffer_s=10)
for i in range(0, len(x), 1000):  # blocks as the engine would hand them over
    player.write(x[i:i + 1000])
info = player.device_info()
player.close()
os.environ["FAKESPK_FILE"] = os.devnull  # the file plugin rewrites its file at every open
small = Player("fakespk", 8000, buffer_s=0.1)
small.write(x[:16000])  # 2 s into a 0.1 s buffer
small.close(drain_s=0.5)
dry = Player("fakespk", 8000, buffer_s=1, prebuffer_s=0.05)
for i in range(3):
    dry.write(x[i * 800:(i + 1) * 800])
    time.sleep(0.05)
dry.close(drain_s=0.5)
print(json.dumps({"info": info, "drops": player.drops(), "small": small.drops(), "dry": dry.drops()}))
"""


def test_player_plays_what_was_written(mic16k: tuple[Path, Path, np.ndarray], bach: Path, tmp_path: Path) -> None:
    home, raw, _ = mic16k
    x, rate = load_stereo(bach)
    at8k = soxr.resample(x.mean(axis=1), rate, MODEL_RATE)[: 3 * MODEL_RATE].astype(np.float32)
    np.save(tmp_path / "x.npy", at8k)
    speaker = tmp_path / "speaker.raw"
    report = json.loads(run_ok(PLAY, home, raw, str(tmp_path / "x.npy"), speaker=speaker))
    assert report["info"]["rate"] == 22050 and report["info"]["channels"] == 2
    assert "output_overflow" not in report["drops"]
    assert report["small"]["output_overflow"] >= 1
    assert report["dry"]["underflow"] >= 2
    played = np.fromfile(speaker, dtype="<f4").reshape(-1, 2)
    assert np.array_equal(played[:, 0], played[:, 1])  # mono on both channels
    expected = soxr.resample(at8k, MODEL_RATE, 22050, quality="HQ")
    first = int(np.argmax(played[:, 0] != 0))  # the device's own priming silence comes first
    lead = int(np.argmax(expected != 0))
    got = played[first - lead:first - lead + len(expected), 0]
    np.testing.assert_allclose(got, expected, atol=1e-6)
