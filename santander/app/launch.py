"""How `santander app` starts the page: `streamlit run` on santander/app/page.py, headless,
with Streamlit's usage statistics off, told where the server and the repository are."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from santander.app.data import REPOSITORY_ENV, SERVER_ENV

PAGE = Path(__file__).resolve().parent / "page.py"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def app_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(PAGE),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal"]


def app_environment(server_url: str, repository: str | Path) -> dict[str, str]:
    return {**os.environ, SERVER_ENV: server_url,
            REPOSITORY_ENV: str(Path(repository).resolve())}
