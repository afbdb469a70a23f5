"""A Hearth server for tests: in-process (uvicorn thread) or as a `hearth-cli serve` subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

KEY = "test-key-123"


@contextlib.contextmanager
def serving(model_dir, *, max_queue: int = 64, **config):
    """A started LocalServer on a free loopback port, with its own scheduler and the model loaded (its fast
    decode path prepared)."""
    from engine.config import LoadConfig
    from engine.scheduler import Scheduler
    from engine.server import LocalServer, ServerConfig
    from engine.tasks import load_task

    scheduler = Scheduler(max_queue=max_queue)
    scheduler.submit(load_task, config=LoadConfig(path=str(model_dir), device="cpu")).result(120)
    decoder = scheduler.session().model.extras.get("decoder")
    if decoder is not None:  # like `hearth-cli serve`: requests run on the fast decode path from the first one
        assert decoder.wait_ready(120), decoder.describe()
    server = LocalServer(ServerConfig(port=0, api_key=config.pop("api_key", KEY), max_queue=max_queue, **config),
                         scheduler).start()
    try:
        yield server, scheduler
    finally:
        server.stop()
        scheduler.shutdown(timeout=10)


def client(server, key: str = KEY, **kwargs):
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=kwargs.pop("timeout", 60),
                         **kwargs)


class ServeProcess:
    """`hearth-cli serve` in a subprocess with its own data folder; ``kill()`` ends it at once."""

    def __init__(self, model_dir, data_dir, key: str = KEY, extra: tuple[str, ...] = ()) -> None:
        env = dict(os.environ, HEARTH_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "engine.cli", "serve", "--model", str(model_dir), "--port", "0",
               "--api-key", key, "--device", "cpu", *extra]
        self.log_path = Path(data_dir) / "serve.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=str(Path(__file__).parent.parent))
        self.base_url = self._wait_for_url(120)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"Serving .* at (http://\S+)", self.log_path.read_text())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth-cli serve exited: {self.log_path.read_text()}")
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"hearth-cli serve did not start: {self.log_path.read_text()}")

    def output(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def interrupt(self, timeout: float = 30) -> int:
        import signal

        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self.log.close()
        return code
