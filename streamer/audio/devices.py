"""Sound devices through PortAudio (sounddevice): listing, choosing, live capture and playback.

A device is opened at its own default rate and channel count (at most stereo) and converted once, at the
edge, to mono at the model's rate. PortAudio callbacks never block: capture copies each buffer into a
bounded queue, playback reads from a bounded ring; what does not fit is dropped and counted (`drops()`).

sounddevice is imported on first use, so the rest of the runtime works where PortAudio is not installed.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from streamer.audio.resample import StreamResampler
from streamer.core.cstderr import silence_c_stderr
from streamer.core.errors import StreamerError, need
from streamer.run.sources import Block, Timing

COMMON_RATES = (48000, 44100, 32000, 22050, 16000, 8000)  # Hz, tried in order when the default rate fails
MAX_CHANNELS = 2  # a device is opened with at most this many channels, then mixed to mono
STALL_S = 5.0  # a live device that delivers nothing for this long has stopped: error, not a hang
DRAIN_POLL_S = 0.01  # Player.close() checks this often whether the buffer has played out
ABANDONED: list[Any] = []  # streams whose device went away and that would not close
CLOSE_WAIT_S = 2.0  # s: closing a device that has disappeared may never return; the run does not wait longer
PREBUFFER_S = 0.6  # playback starts with this much queued: more than one 512 ms model frame, so a steady
# frame-by-frame writer does not run the device dry between frames
HINT = "(run `streamer devices`)"


class DeviceError(StreamerError):
    """A device that does not exist, is ambiguous, or cannot be opened. One line, names the device."""


def _sd() -> Any:
    try:
        sounddevice = need("sounddevice", "audio devices", "audio")
    except OSError as exc:  # the module is there but the PortAudio library is not
        raise DeviceError(f"audio devices need the PortAudio library ({exc}); install libportaudio2") from None
    return sounddevice


def _default_index(sd: Any, kind: str) -> int:
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        return -1


def list_devices() -> list[dict[str, Any]]:
    """Every PortAudio device: index, name, host API, channel counts, default rate, default in/out flags."""
    sd = _sd()
    hostapis = sd.query_hostapis()
    default_in, default_out = _default_index(sd, "input"), _default_index(sd, "output")
    return [{"index": int(d["index"]), "name": str(d["name"]), "hostapi": str(hostapis[d["hostapi"]]["name"]),
             "max_input_channels": int(d["max_input_channels"]),
             "max_output_channels": int(d["max_output_channels"]),
             "default_samplerate": float(d["default_samplerate"]),
             "default_input": d["index"] == default_in, "default_output": d["index"] == default_out}
            for d in sd.query_devices()]


def print_devices(console: Any = None) -> None:
    """`streamer devices`: a Rich table of the devices, `>` marking the default input and output."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    devices = list_devices()
    if not devices:
        console.print("no audio devices found (PortAudio sees none on this machine)")
        return
    table = Table(title="audio devices")
    for column in ("#", "name", "host API", "in", "out", "default rate", "default"):
        table.add_column(column, justify="right" if column in ("#", "in", "out", "default rate") else "left")
    for d in devices:
        marks = " ".join(m for m, on in (("> in", d["default_input"]), ("> out", d["default_output"])) if on)
        table.add_row(str(d["index"]), d["name"], d["hostapi"], str(d["max_input_channels"]),
                      str(d["max_output_channels"]), f"{d['default_samplerate']:g} Hz", marks)
    console.print(table)


def _channels_key(kind: str) -> str:
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', not {kind!r}")
    return f"max_{kind}_channels"


def resolve_device(spec: str | int | None, kind: str) -> dict[str, Any]:
    """The device `spec` names: None for the default, an index, or a (case-insensitive) part of a name.

    An exact name wins over partial matches; several partial matches are an error listing them.
    """
    key = _channels_key(kind)
    devices = list_devices()
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        found = [d for d in devices if d[f"default_{kind}"] and d[key] > 0]
        if not found:
            raise DeviceError(f"no default {kind} device {HINT}")
        return found[0]
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        by_index = [d for d in devices if d["index"] == index]
        if not by_index:
            raise DeviceError(f"no such {kind} device '{spec}' {HINT}")
        if by_index[0][key] == 0:
            raise DeviceError(f"device {index} '{by_index[0]['name']}' has no {kind} channels {HINT}")
        return by_index[0]
    return _by_name(devices, spec.strip(), kind, key)


def _by_name(devices: list[dict[str, Any]], name: str, kind: str, key: str) -> dict[str, Any]:
    usable = [d for d in devices if d[key] > 0]
    exact = [d for d in usable if d["name"].lower() == name.lower()]
    found = exact or [d for d in usable if name.lower() in d["name"].lower()]
    if not found:
        raise DeviceError(f"no such {kind} device '{name}' {HINT}")
    if len(found) > 1:
        names = ", ".join(f"{d['index']} '{d['name']}'" for d in found)
        raise DeviceError(f"{kind} device '{name}' is ambiguous: {names}; give the index {HINT}")
    return found[0]


def _open_stream(factory: Any, info: dict[str, Any], kind: str, block_s: float,
                 callback: Any) -> tuple[Any, float, int]:
    """Open at the device's default rate, else the common rates; (stream, rate, channels) or DeviceError."""
    sd = _sd()
    default = float(info["default_samplerate"])
    rates = [default] + [float(r) for r in COMMON_RATES if r != default]
    widest = max(1, min(int(info[_channels_key(kind)]), MAX_CHANNELS))
    last: Exception | None = None
    for rate in rates:
        for channels in sorted({widest, 1}, reverse=True):
            try:
                with silence_c_stderr():
                    stream = factory(device=info["index"], samplerate=rate, channels=channels, dtype="float32",
                                     blocksize=max(1, int(round(block_s * rate))), callback=callback)
                return stream, rate, channels
            except (sd.PortAudioError, ValueError) as exc:
                last = exc
    tried = ", ".join(f"{r:g}" for r in rates)
    reason = str(last).splitlines()[0] if last else "no reason given"
    reason = reason.split(": ", 1)[-1]  # drop sounddevice's "Error opening InputStream: "
    raise DeviceError(f"{kind} device {info['index']} '{info['name']}' cannot open at any rate "
                      f"({tried} Hz; PortAudio: {reason})")


def _close_stream(stream: Any) -> None:
    """Abort and close, waiting at most CLOSE_WAIT_S: PortAudio's abort never returns once the device (or its
    sound server, e.g. JACK) has gone away; the stream is then left to the process's exit."""
    sd = _sd()

    def close() -> None:
        try:
            stream.abort()
        except sd.PortAudioError:
            pass
        stream.close(ignore_errors=True)

    with silence_c_stderr():
        closer = threading.Thread(target=close, name="close-audio-device", daemon=True)
        closer.start()
        closer.join(CLOSE_WAIT_S)
    if closer.is_alive():
        ABANDONED.append(stream)  # PortAudio's own exit handler would hang on it too: see cli/entry.py


class _OpenDevice:
    """What a source and a player both report about the device they opened."""

    name: str
    info: dict[str, Any]
    device_rate: float
    channels: int

    def device_info(self) -> dict[str, Any]:
        return {"name": self.name, "index": self.info["index"], "hostapi": self.info["hostapi"],
                "rate": self.device_rate, "channels": self.channels}

    def describe(self) -> str:
        return f"{self.name} ({self.device_rate:g} Hz, {self.channels} ch)"


class DeviceSource(_OpenDevice):
    """Live capture: yields the device's own blocks, (n, channels) float32 at its own rate, as it delivers
    them; the stream resamples and mixes them at its edge.

    The PortAudio callback copies each buffer (`block_s` long) into a queue holding at most `max_queue_s`; a
    full queue drops the buffer (`overflow`, counted in buffers). PortAudio's own overruns count as
    `input_overflow`. `start` indices stay contiguous across drops: the stream the model sees simply lacks
    the dropped audio. `max_frames` (at the device's rate) or `seconds` end the stream early.
    """

    timing = Timing.LIVE

    def __init__(self, device: str | int | None, block_s: float, max_queue_s: float = 5.0, *,
                 max_frames: int | None = None, seconds: float | None = None, stall_s: float = STALL_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.info = resolve_device(device, "input")
        self.name = str(self.info["name"])
        self.block_s = block_s
        self.stall_s = stall_s
        self.clock = clock
        size = max(2, math.ceil(max_queue_s / block_s))
        self.queue: queue.Queue[tuple[float, np.ndarray]] = queue.Queue(maxsize=size)
        self.overflow = 0  # buffers dropped because the queue was full
        self.input_overflow = 0  # buffers PortAudio flagged as overrun
        self.stream: Any = None
        self.stream, self.device_rate, self.channels = _open_stream(_sd().InputStream, self.info, "input",
                                                                    block_s, self._callback)
        self.rate = float(self.device_rate)
        self.max_frames = max_frames if seconds is None else int(round(seconds * self.rate))

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.input_overflow += 1
        try:
            self.queue.put_nowait((self.clock(), indata.copy()))  # arrival time: latency counts from it
        except queue.Full:
            self.overflow += 1

    def blocks(self) -> Iterator[Block]:
        start = 0
        try:
            with silence_c_stderr():
                self.stream.start()
            while self.max_frames is None or start < self.max_frames:
                arrival, buffer = self._next_buffer()
                if self.max_frames is not None:
                    buffer = buffer[:self.max_frames - start]
                if len(buffer):
                    yield Block(buffer, start, arrival)
                    start += len(buffer)
        finally:
            self.close()

    def summary(self) -> dict[str, Any]:
        return {"device": self.device_info()}

    def _next_buffer(self) -> tuple[float, np.ndarray]:
        try:
            return self.queue.get(timeout=self.stall_s)
        except queue.Empty:
            state = "stopped" if self.stream is None or not self.stream.active else "delivers nothing"
            raise DeviceError(f"input device '{self.name}' {state}: no audio for {self.stall_s:g} s") from None

    def drops(self) -> dict[str, int]:
        counts = {"overflow": self.overflow, "input_overflow": self.input_overflow}
        return {k: v for k, v in counts.items() if v}

    def length(self) -> int | None:
        return None

    def close(self) -> None:
        """Abort and close the stream (idempotent); queued audio is discarded."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            _close_stream(stream)

    def __enter__(self) -> DeviceSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Ring:
    """Bounded FIFO of float32 samples shared by a writer thread and the PortAudio callback."""

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(max(1, capacity), dtype=np.float32)
        self.head = 0  # index of the oldest sample
        self.size = 0
        self.lock = threading.Lock()

    def push(self, x: np.ndarray) -> int:
        """Append what fits; returns how many samples did not fit (dropped)."""
        with self.lock:
            n = min(len(x), len(self.data) - self.size)
            tail = (self.head + self.size) % len(self.data)
            first = min(n, len(self.data) - tail)
            self.data[tail:tail + first] = x[:first]
            self.data[:n - first] = x[first:n]
            self.size += n
        return len(x) - n

    def pop(self, out: np.ndarray) -> int:
        """Fill the start of `out` with the oldest samples; returns how many."""
        with self.lock:
            n = min(len(out), self.size)
            first = min(n, len(self.data) - self.head)
            out[:first] = self.data[self.head:self.head + first]
            out[first:n] = self.data[:n - first]
            self.head = (self.head + n) % len(self.data)
            self.size -= n
        return n


class Player(_OpenDevice):
    """Playback of mono samples at `rate` on an output device, without ever blocking the caller.

    `write()` resamples to the device's rate and queues up to `buffer_s`; what does not fit is dropped
    (`output_overflow`, counted in writes). The stream starts once `prebuffer_s` is queued, and after
    running dry it waits for `prebuffer_s` again; a callback that finds too little counts an `underflow`.
    """

    def __init__(self, device: str | int | None, rate: int, *, buffer_s: float = 2.0,
                 prebuffer_s: float = PREBUFFER_S, block_s: float = 0.02) -> None:
        self.info = resolve_device(device, "output")
        self.name = str(self.info["name"])
        self.rate = rate
        self.underflow = 0  # callbacks that ran out of samples mid-play
        self.output_underflow = 0  # callbacks PortAudio flagged as underrun
        self.output_overflow = 0  # writes that did not fit in the buffer
        self._draining = False
        self._primed = False
        self._started = False
        self.stream: Any = None
        self.stream, self.device_rate, self.channels = _open_stream(_sd().OutputStream, self.info, "output",
                                                                    block_s, self._callback)
        self.ring = _Ring(int(round(buffer_s * self.device_rate)))
        self.prebuffer = min(int(round(prebuffer_s * self.device_rate)), len(self.ring.data))
        self.resampler = StreamResampler(rate, self.device_rate, 1)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.output_underflow += 1
        mono = np.zeros(frames, dtype=np.float32)
        if self._primed or self._draining or self.ring.size >= max(1, self.prebuffer):
            self._primed = True
            n = self.ring.pop(mono)
            if n < frames and not self._draining:
                self.underflow += 1
                self._primed = False
        outdata[:] = mono[:, None]

    def write(self, samples: np.ndarray) -> None:
        """Queue mono samples at `rate`; returns at once."""
        if self.stream is None:
            raise DeviceError(f"output device '{self.name}' is closed")
        self._push(self.resampler.process(np.clip(np.ravel(samples), -1.0, 1.0)))

    def _push(self, x: np.ndarray) -> None:
        if len(x) and self.ring.push(x):
            self.output_overflow += 1
        if not self._started and self.ring.size >= self.prebuffer:
            self._start()

    def _start(self) -> None:
        self._started = True
        with silence_c_stderr():
            self.stream.start()

    def drops(self) -> dict[str, int]:
        counts = {"underflow": self.underflow, "output_underflow": self.output_underflow,
                  "output_overflow": self.output_overflow}
        return {k: v for k, v in counts.items() if v}

    def close(self, drain_s: float = 2.0) -> None:
        """Play what is queued (waiting at most `drain_s`), then stop and close the stream."""
        if self.stream is None:
            return
        self._push(self.resampler.flush())
        self._draining = True
        if self.ring.size and not self._started:
            self._start()
        deadline = time.monotonic() + drain_s
        while self._started and self.ring.size and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_S)
        if self._started:
            time.sleep(min(drain_s, float(self.stream.latency)))  # the last buffer handed to the device
        stream, self.stream = self.stream, None
        _close_stream(stream)

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
