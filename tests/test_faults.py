"""Faults injected into real runs: signals at any point (start-up included), a disk that fills up under each
sink, two runs given the same event log. What must hold: one line on stderr and a non-zero exit, outputs that
stay valid (whole JSON lines, a playable WAV, whole images), and the summary written where it can be."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from .conftest import MODELS, ROOT, SAMPLE_RECORD, in_foreground

CLI = [sys.executable, "-m", "streamer.cli"]


def _limit_file_size(limit: int):  # type: ignore[no-untyped-def]
    """A process whose files cannot grow past `limit` bytes: writes then fail as on a full disk (EFBIG; Python
    ignores SIGXFSZ), which is what each sink must survive."""

    def apply() -> None:
        in_foreground()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("delay", [0.25, 0.6, 1.5])
def test_a_signal_at_any_point_ends_cleanly(tmp_path: Path, sig: str, code: int, delay: float) -> None:
    """Ctrl-C or SIGTERM while the command starts (imports, model, input) or while it runs: the exit status of
    the signal, at most one line on stderr, never a traceback; once the run has started, its event log holds
    whole lines and its summary is written (SIGTERM at start-up used to kill the process without a word)."""
    events, summary = tmp_path / "ev.jsonl", tmp_path / "s.json"
    proc = subprocess.Popen([*CLI, "ecg", str(SAMPLE_RECORD), "--speed", "20", "--no-dashboard",
                             "--events", str(events), "--summary", str(summary)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=in_foreground)
    time.sleep(delay)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(_nonblank(err)) <= 1, err
    if events.exists() and events.stat().st_size:  # the run had started: everything it did is kept
        lines = events.read_text().splitlines()
        assert all(json.loads(line)["t"] >= 0 for line in lines)
        data = json.loads(summary.read_text())
        assert data["interrupted"] is True and data["beats"] == len(lines)
    elif not summary.exists():  # still starting: one line says so
        assert _nonblank(err) == ["streamer: interrupted" if code == 130 else "streamer: terminated"]


def test_a_full_disk_under_the_event_log(tmp_path: Path) -> None:
    """The event log cannot grow: the run stops with one line naming the file; the log holds only whole lines
    (the block that failed is cut back out) and the summary is still written."""
    events, summary = tmp_path / "ev.jsonl", tmp_path / "s.json"
    proc = subprocess.run([*CLI, "ecg", str(SAMPLE_RECORD), "--speed", "max", "--no-dashboard",
                           "--events", str(events), "--summary", str(summary)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size(30_000), timeout=120)
    assert proc.returncode == 2
    assert _nonblank(proc.stderr) == [f"streamer: error: {events}: cannot write events (File too large); "
                                      "the events before this block are kept, whole"]
    text = events.read_text()
    assert text.endswith("\n") and len(text) <= 30_000
    assert all(json.loads(line)["beat"] >= 0 for line in text.splitlines())
    data = json.loads(summary.read_text())
    assert data["error"].startswith(f"{events}: cannot write events")


def test_a_full_disk_under_the_reconstructed_audio(tmp_path: Path) -> None:
    """The WAV cannot grow: one line, the WAV stays playable with a header that counts exactly the samples it
    holds, the summary is written."""
    wav, summary = tmp_path / "o.wav", tmp_path / "s.json"
    proc = subprocess.run([*CLI, "audio", "--file", str(ROOT / "samples" / "audio" / "bach.wav"), "--speed", "max",
                           "--no-dashboard", "--out", str(wav), "--summary", str(summary)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size(100_000), timeout=120)
    assert proc.returncode == 2
    assert _nonblank(proc.stderr)[0].startswith(f"streamer: error: {wav}: cannot write WAV (File too large)")
    assert len(_nonblank(proc.stderr)) == 1
    samples, rate = sf.read(wav)
    assert rate == 8000 and 0 < len(samples) and 44 + 2 * len(samples) == wav.stat().st_size
    assert json.loads(summary.read_text())["error"].startswith(f"{wav}: cannot write WAV")


def test_a_full_disk_under_the_denoised_images(tmp_path: Path) -> None:
    """An image cannot be written: one line naming it; every image written before is whole (written to a temp
    file and renamed), no temp file is left, the summary is written."""
    import cv2

    out, summary = tmp_path / "o", tmp_path / "s.json"
    images = tmp_path / "in"
    images.mkdir()
    digit = cv2.imread(str(ROOT / "samples" / "images" / "test_00000.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(images / "a_small.png"), digit)
    cv2.imwrite(str(images / "b_large.png"), cv2.resize(digit, (600, 600), interpolation=cv2.INTER_LINEAR))
    proc = subprocess.run([*CLI, "images", str(images), "--out", str(out), "--no-dashboard", "--batch", "1",
                           "--summary", str(summary)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size(20_000), timeout=120)
    assert proc.returncode == 2
    assert _nonblank(proc.stderr) == [f"streamer: error: {out / 'b_large.png'}: cannot write image "
                                      "(File too large)"]
    assert sorted(p.name for p in out.iterdir()) == ["a_small.png"]
    assert cv2.imread(str(out / "a_small.png"), cv2.IMREAD_GRAYSCALE).shape == digit.shape
    assert json.loads(summary.read_text())["error"].endswith("cannot write image (File too large)")


def test_a_summary_that_cannot_be_written_is_still_shown(tmp_path: Path) -> None:
    """/dev/full as the summary: the summary table is printed anyway, then one line naming the file, exit 2."""
    proc = subprocess.run([*CLI, "ecg", str(SAMPLE_RECORD), "--speed", "max", "--no-dashboard",
                           "--summary", "/dev/full"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "aestream summary" in proc.stdout
    assert _nonblank(proc.stderr)[0].startswith("streamer: error: /dev/full: cannot write summary")
    assert len(_nonblank(proc.stderr)) == 1


def test_two_runs_never_share_an_event_log(tmp_path: Path) -> None:
    """While one run writes an event log, a second run given the same file is refused (they used to interleave
    lines, both exiting 0); the first run's log is untouched."""
    from click.testing import CliRunner

    from streamer.cli.main import main
    from streamer.run.sinks import JsonlSink

    events = tmp_path / "ev.jsonl"
    first = JsonlSink(events)
    try:
        result = CliRunner().invoke(main, ["ecg", str(SAMPLE_RECORD), "--speed", "max", "--events", str(events),
                                           "--model", str(MODELS / "ecg.onnx")])
        assert result.exit_code == 2
        assert _nonblank(result.stderr) == [f"streamer: error: {events}: another run is writing events to this file"]
    finally:
        first.close()
    result = CliRunner().invoke(main, ["ecg", str(SAMPLE_RECORD), "--speed", "max", "--events", str(events)])
    assert result.exit_code == 0, result.stderr  # the lock goes with the first run
    assert len(events.read_text().splitlines()) > 1000


def test_stdin_that_stalls_and_resumes_loses_nothing(tmp_path: Path) -> None:
    """A live source that stops for 2 s mid-stream and goes on: nothing dropped for it, the beats are those of
    the same samples read in one go."""
    from streamer.ecg.readers import read_ecg

    signal_mv = read_ecg(SAMPLE_RECORD).signal[: 360 * 40]
    lines = [f"{v:.3f}\n" for v in signal_mv]
    whole, whole_summary = tmp_path / "whole.jsonl", tmp_path / "whole.json"
    subprocess.run([*CLI, "ecg", "-", "--fs", "360", "--no-dashboard", "--events", str(whole),
                    "--summary", str(whole_summary)],
                   input="".join(lines), text=True, capture_output=True, timeout=120, check=True)
    paused = tmp_path / "paused.jsonl"
    summary = tmp_path / "s.json"
    proc = subprocess.Popen([*CLI, "ecg", "-", "--fs", "360", "--no-dashboard", "--events", str(paused),
                             "--summary", str(summary)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    half = len(lines) // 2
    proc.stdin.write("".join(lines[:half]))
    proc.stdin.flush()
    time.sleep(2.0)
    proc.stdin.write("".join(lines[half:]))
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    data = json.loads(summary.read_text())
    assert data["drops"] == json.loads(whole_summary.read_text())["drops"]  # only the last beat, unfinished
    a = [json.loads(x)["r_sample"] for x in whole.read_text().splitlines()]
    b = [json.loads(x)["r_sample"] for x in paused.read_text().splitlines()]
    assert a == b and len(a) > 40
    assert np.isclose(data["duration_s"], len(lines) / 360, atol=0.5)


def test_an_audio_device_that_disappears_mid_stream(tmp_path: Path) -> None:
    """A live capture on a real, paced device (JACK's dummy driver) whose server is killed mid-stream: the run
    ends with one line naming the device, the WAV keeps what was reconstructed, the summary says why; the
    process does not hang in PortAudio (closing a vanished stream never returns: it is left behind)."""
    from .jack_device import JACKD, JackServer

    if JACKD is None:
        pytest.skip("needs jackd (apt-get install jackd2: the README's test command installs it)")
    wav, summary = tmp_path / "o.wav", tmp_path / "s.json"
    with JackServer(rate=8000) as server:
        proc = subprocess.Popen([*CLI, "audio", "--device", "system", "--seconds", "60", "--no-dashboard",
                                 "--out", str(wav), "--summary", str(summary)], env=server.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=in_foreground)
        deadline = time.monotonic() + 30
        while (not wav.exists() or wav.stat().st_size < 44 + 2 * 8192) and time.monotonic() < deadline:
            time.sleep(0.2)
        server.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert _nonblank(err) == ["streamer: error: input device 'system' stopped: no audio for 5 s"]
    samples, rate = sf.read(wav)
    assert rate == 8000 and len(samples) >= 8192
    data = json.loads(summary.read_text())
    assert data["error"] == "input device 'system' stopped: no audio for 5 s"
    assert data["device"]["hostapi"] == "JACK Audio Connection Kit"


def test_a_full_disk_under_the_denoised_video(tmp_path: Path) -> None:
    """OpenCV's video writer reports a failed frame only by printing it: the run now stops with one line
    naming the video (it went on silently, exit 0, the video holding 4 of 48 frames) and writes its summary."""
    import cv2

    images = tmp_path / "in"
    images.mkdir()
    for i, path in enumerate(sorted((ROOT / "samples" / "images").glob("test_*.png")) * 3):
        cv2.imwrite(str(images / f"{i:03d}.png"), cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (256, 256)))
    video, summary = tmp_path / "o.avi", tmp_path / "s.json"
    proc = subprocess.run([*CLI, "images", str(images), "--out", str(video), "--no-dashboard",
                           "--summary", str(summary)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size(60_000), timeout=120)
    assert proc.returncode == 2
    lines = _nonblank(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"streamer: error: {video}: cannot write video frame ")
    assert "cannot write video frame" in json.loads(summary.read_text())["error"]


def test_codes_go_to_a_missing_folder_or_to_stdout(tmp_path: Path) -> None:
    """`encode -o` into a folder that does not exist is one line (it was a traceback); `-o /dev/stdout` writes
    the codes there (the atomic rename is only for regular files: it would replace the link)."""
    wav = ROOT / "samples" / "audio" / "bach.wav"
    proc = subprocess.run([*CLI, "encode", str(wav), "-o", str(tmp_path / "no" / "x.npz")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert _nonblank(proc.stderr) == [f"streamer: error: {tmp_path / 'no' / 'x.npz'}: cannot write codes "
                                      "(No such file or directory)"]
    with open(tmp_path / "piped.npz", "wb") as out:
        proc2 = subprocess.run([*CLI, "encode", str(wav), "-o", "/dev/stdout"], stdout=out,
                               stderr=subprocess.PIPE, timeout=120)
    assert proc2.returncode == 0 and Path("/dev/stdout").is_symlink()
    assert len(np.load(tmp_path / "piped.npz")["values"]) == 59


@pytest.mark.parametrize(("raised", "code", "line"), [(KeyboardInterrupt, 130, "streamer: interrupted"),
                                                      ("Terminated", 143, "streamer: terminated")])
def test_an_interruption_a_library_turns_into_its_own_error(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], raised: Any,
                                                            code: int, line: str) -> None:
    """onnxruntime catches a Ctrl-C that lands while it imports and raises `ImportError: initialization
    failed` from it (seen once in a run of the signal test above): still an interruption, one line."""
    import streamer.cli.main
    from streamer.cli import entry

    interruption = entry.Terminated if raised == "Terminated" else raised

    def main() -> None:
        try:
            raise interruption()
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(streamer.cli.main, "main", main)

    def exit_now(code: int, run_atexit: bool = False) -> None:  # not the test process itself
        raise SystemExit(code)

    monkeypatch.setattr(entry, "_exit_now", exit_now)
    previous = signal.getsignal(signal.SIGTERM)  # entry.run installs its own: give pytest's back
    try:
        with pytest.raises(SystemExit) as ended:
            entry.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert ended.value.code == code
    assert _nonblank(capsys.readouterr().err) == [line]
