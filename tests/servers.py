"""Starting a real `mlserver` process on free local ports, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from santander.serve import mlserver_command, server_environment, wait_until_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    http_url: str
    grpc_address: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_server(repository: Path, workdir: Path, model: str = "xgboost-model",
                   timeout: float = 120.0):
    http, grpc, metrics = free_port(), free_port(), free_port()
    env = server_environment(host="127.0.0.1", http_port=http, grpc_port=grpc,
                             metrics_port=metrics)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "mlserver.log"
    with open(log, "wb") as handle:
        # cwd: MLServer writes .envs/ and .metrics/ into its working directory.
        process = subprocess.Popen(mlserver_command(repository.resolve()), cwd=workdir,
                                   env=env, stdout=handle, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}", process, log)
    try:
        wait_until_ready(server.http_url, model, timeout=timeout,
                         is_alive=lambda: process.poll() is None)
        yield server
    except Exception:
        print(server.log_text()[-4000:])
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
