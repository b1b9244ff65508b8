"""Fixtures for the server's integration tests: a `flashlm serve` process on a free
loopback port with the real SmolLM2 model, started once per session (and extra ones for
tests that need other flags or kill the server)."""
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FLASHLM_BIN", str(ROOT / "build" / "flashlm"))
MODEL = os.environ.get("FLASHLM_MODEL", str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


class ServerProcess:
    """`flashlm serve --port 0 ...`; the port is read from its first line on stderr."""

    def __init__(self, *extra_args, model=None):
        self.args = [BIN, "serve", "-m", model or MODEL, "--port", "0", "-t", "2", *extra_args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log = []
        self._port_seen = threading.Event()
        self.port = None
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._port_seen.wait(30):
            self.kill()
            raise RuntimeError("server did not report its port:\n" + self.output())
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_log(self):
        for line in self.proc.stdout:
            self.log.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._port_seen.set()

    def output(self):
        return "".join(self.log)

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n" + self.output())
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready in time:\n" + self.output())

    def stop(self, timeout=120):
        """SIGTERM, then the exit status (drains in-flight requests first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def metric(text, name):
    """One unlabelled sample from Prometheus text."""
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"no metric {name}"
    return float(m.group(1))


def start_server(*extra_args, model=None):
    if not Path(BIN).is_file():
        pytest.fail(f"no flashlm binary at {BIN} (set FLASHLM_BIN)")
    if not Path(model or MODEL).is_file():
        pytest.fail(f"no model at {model or MODEL} (run scripts/fetch_models.sh)")
    return ServerProcess(*extra_args, model=model)


@pytest.fixture(scope="session")
def server():
    s = start_server("--parallel", "8", "-c", "2048").wait_ready()
    yield s
    code = s.stop()
    assert code == 0, s.output()


GEMMA = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture(scope="session")
def gemma_server():
    """The second real model (Gemma 3 270M), started on first use."""
    s = start_server("--parallel", "8", "-c", "4096", model=str(GEMMA)).wait_ready()
    yield s
    code = s.stop()
    assert code == 0, s.output()


@pytest.fixture(params=["smollm2", "gemma3"])
def model_client(request):
    """An openai client for each real model."""
    import openai

    s = request.getfixturevalue("server" if request.param == "smollm2" else "gemma_server")
    return openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
