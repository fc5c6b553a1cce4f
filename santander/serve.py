"""Starting MLServer on the model repository, and waiting until a model is ready."""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from santander import config


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
    url = f"{http_url.rstrip('/')}/v2/models/{model}/ready"
    while time.monotonic() < deadline:
        if not is_alive():
            raise RuntimeError("the server exited before the model was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"model {model} not ready at {url} after {timeout:.0f}s")
