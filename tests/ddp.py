"""Start a script as the ranks of a DDP run on the CPU (gloo), as ``torchrun`` would.

Each rank gets the environment ``torchrun`` gives its workers (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ...); starting the workers directly saves the launcher's own start-up time.
The script receives the output folder as its first argument and writes ``rank{r}.json`` there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(script: str, folder: Path, world_size: int = 2, timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``script`` (Python source) as ``world_size`` gloo ranks; returns each rank's ``rank{r}.json``.

    Fails the test with the rank's stderr if one exits non-zero; kills every rank still running
    when one fails or the ``timeout`` (generous: a loaded machine imports torch slowly) passes.
    """
    path = folder / "ddp_script.py"
    path.write_text(script)
    port = str(_free_port())
    procs = []
    for rank in range(world_size):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        cmd = [sys.executable, str(path), str(folder)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for rank, proc in enumerate(procs):
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"rank {rank} failed:\n{err[-3000:]}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world_size)]
