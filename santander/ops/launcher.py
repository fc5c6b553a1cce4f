"""Starting MLServer on the model repository, and waiting until a model is ready."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from santander import config
from santander.v2_client import V2Client


def mlserver_command(repository: str | Path = config.DEPLOY_DIR) -> list[str]:
    """`mlserver start <repository>`, using the mlserver beside this Python if there is one."""
    beside = Path(sys.executable).with_name("mlserver")
    executable = str(beside) if beside.exists() else (shutil.which("mlserver") or "mlserver")
    return [executable, "start", str(repository)]


def server_environment(host: str | None = None, http_port: int | None = None,
                       grpc_port: int | None = None, metrics_port: int | None = None,
                       base: dict[str, str] | None = None) -> dict[str, str]:
    """MLSERVER_* settings. Arguments win over the environment, which wins over defaults."""
    env = dict(os.environ if base is None else base)
    for key, value, default in (("MLSERVER_HOST", host, config.SERVER_HOST),
                                ("MLSERVER_HTTP_PORT", http_port, config.HTTP_PORT),
                                ("MLSERVER_GRPC_PORT", grpc_port, config.GRPC_PORT),
                                ("MLSERVER_METRICS_PORT", metrics_port, config.METRICS_PORT)):
        if value is not None:
            env[key] = str(value)
        else:
            env.setdefault(key, str(default))
    return env


def wait_until_ready(http_url: str, model: str = config.MODEL_NAME, timeout: float = 120.0,
                     is_alive=lambda: True) -> None:
    """Poll /v2/models/<model>/ready (the server's own ready answers before models load)."""
    deadline = time.monotonic() + timeout
    client = V2Client(http_url, timeout=2)
    while time.monotonic() < deadline:
        if not is_alive():
            raise RuntimeError("the server exited before the model was ready")
        if client.ready(model):
            return
        time.sleep(0.25)
    raise TimeoutError(f"model {model} not ready at {client.url}/v2/models/{model}/ready "
                       f"after {timeout:.0f}s")


# Ports handed out by free_port in this process: each goes to one server.
_issued_ports: set[int] = set()
PORTS_BELOW_EPHEMERAL = 8_000


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server about to start.

    Taken below the kernel's ephemeral range, not by binding port 0: bind(0) draws from that
    range, and so does every outgoing connection's source port, so a client connecting
    meanwhile (a readiness poll of another server) could take the port before its server binds
    it (seen in CI: a metrics port already in use, and the server never got ready). Never the
    same port twice in one process."""
    low = _ephemeral_range()[0]
    candidates = list(range(max(1024, low - PORTS_BELOW_EPHEMERAL), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _issued_ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _issued_ports.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 below {low}")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999        # Linux's default (macOS: 49152-65535)
    return low, high


def stop_process(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM (MLServer unloads its models and exits), SIGKILL if it has not within `grace`."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RunningServer:
    http_url: str
    grpc_address: str
    process: subprocess.Popen
    log: Path
    metrics_url: str = ""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_server(repository: str | Path, workdir: str | Path, model: str = config.MODEL_NAME,
                   timeout: float = 120.0, http_port: int | None = None,
                   grpc_port: int | None = None, metrics_port: int | None = None):
    """A real `mlserver start` on 127.0.0.1 (free ports unless given), stopped on exit."""
    http, grpc = http_port or free_port(), grpc_port or free_port()
    metrics = metrics_port or free_port()
    env = server_environment(host="127.0.0.1", http_port=http, grpc_port=grpc,
                             metrics_port=metrics)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "mlserver.log"
    with open(log, "wb") as handle:
        # cwd: MLServer writes .envs/ and .metrics/ into its working directory.
        process = subprocess.Popen(mlserver_command(Path(repository).resolve()), cwd=workdir,
                                   env=env, stdout=handle, stderr=subprocess.STDOUT)
    server = RunningServer(f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}", process, log,
                           f"http://127.0.0.1:{metrics}")
    try:
        wait_until_ready(server.http_url, model, timeout=timeout,
                         is_alive=lambda: process.poll() is None)
        yield server
    except BaseException:
        print(server.log_text()[-4000:], file=sys.stderr)
        raise
    finally:
        stop_process(process)
