"""A real, paced audio device without a sound card: the JACK server's dummy driver (../shared/DESIGN.md,
recipe 2). PortAudio sees it as the device `system` (host API JACK); it runs in real time, so a stream on it
lasts as long as it would on a microphone, and killing the server is a device that disappears.

`JackServer` starts `jackd` under a name of its own (clients find it through JACK_DEFAULT_SERVER, set by
`env()`); `Player` is a JACK client that plays a signal in a loop into every PortAudio input port that
appears, so the stream carries real music rather than the dummy driver's silence.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

import numpy as np

JACKD = shutil.which("jackd")
NAME_SLOTS = 4


class JackServer:
    def __init__(self, rate: int = 8000, period: int = 256) -> None:
        if JACKD is None:
            raise RuntimeError("jackd is not installed (apt-get install jackd2)")
        self.rate = rate
        # A few fixed names, not a fresh one each time: JACK's shared registry holds a fixed number of servers and frees
        # a dead server's entry (a server the tests SIGKILL) only when a server of the same name starts again;
        # with fresh names, runs of the suite on one machine filled it ("Too many servers already active").
        for slot in range(NAME_SLOTS):
            self.name = f"aestream-{slot}"
            self.proc = subprocess.Popen([JACKD, "-n", self.name, "--no-realtime", "-d", "dummy", "-r", str(rate),
                                          "-p", str(period)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=self.env())
            try:
                self._wait_ready()
                return
            except RuntimeError:  # that name is taken by a live server (another test's): the next one
                self.kill(signal.SIGTERM)
        raise RuntimeError(f"jackd would not start under any of {NAME_SLOTS} names")

    def env(self) -> dict[str, str]:
        """The environment of a client (a subprocess, or this process) that must reach this server."""
        return dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jackd exited with {self.proc.returncode}")
            if subprocess.run(["jack_lsp"], env=self.env(), capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("jackd did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """The device disappears (SIGKILL: the server dies without telling its clients)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def __enter__(self) -> JackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill(signal.SIGTERM)


class Player:
    """Plays `samples` (mono, at the server's rate) in a loop into every `PortAudio:in_*` port."""

    def __init__(self, server: JackServer, samples: np.ndarray) -> None:
        import jack

        os.environ["JACK_DEFAULT_SERVER"] = server.name  # read by libjack when the client opens
        self.client: Any = jack.Client("aestream-player", no_start_server=True)
        self.out = self.client.outports.register("out")
        self.samples = np.asarray(samples, dtype=np.float32)
        self.position = 0
        self.client.set_process_callback(self._process)
        self.client.activate()
        self._stop = threading.Event()
        self._connector = threading.Thread(target=self._connect_loop, daemon=True)
        self._connector.start()

    def _process(self, frames: int) -> None:
        idx = (self.position + np.arange(frames)) % len(self.samples)
        self.out.get_array()[:] = self.samples[idx]
        self.position = (self.position + frames) % len(self.samples)

    def _connect_loop(self) -> None:
        while not self._stop.wait(0.1):
            for port in self.client.get_ports("PortAudio", is_input=True, is_audio=True):
                if self.out not in self.client.get_all_connections(port):
                    try:
                        self.client.connect(self.out, port)
                    except Exception:  # the port went away between listing and connecting
                        pass

    def close(self) -> None:
        self._stop.set()
        self.client.deactivate()
        self.client.close()
