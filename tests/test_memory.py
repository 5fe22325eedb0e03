"""chainrule.memory: a training step's freed pages are reused by the next, not faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chainrule import memory

GLIBC = memory._glibc()

# Allocates, touches and frees the arrays of a "step" (like a graph's teardown, all freed at
# once), three times, and prints the page faults of the last step.
STEP = """
import json, resource
import chainrule, numpy as np
def step():
    arrays = [np.ones(1 << 20, np.float32) for _ in range(8)]  # 8 arrays of 4 MiB
    del arrays
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "status": chainrule.memory.status()}))
"""


def _run(env_value: str | None) -> dict:
    env = dict(os.environ)
    env.pop("CHAINRULE_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["CHAINRULE_KEEP_FREED_MEMORY"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", STEP], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="the allocator settings exist only in glibc (Linux)")
def test_a_step_reuses_the_pages_the_previous_step_freed():
    kept, returned = _run(None), _run("0")
    assert kept["status"].startswith("freed memory kept"), kept
    assert returned["status"] == (
        "freed memory returned to the system (CHAINRULE_KEEP_FREED_MEMORY=0)"
    )
    # 32 MiB touched: 8,192 pages of 4 KiB when they come fresh from the kernel
    assert returned["faults"] > 4000, returned
    assert kept["faults"] < 400, kept


def test_status_says_what_was_done():
    assert memory.status().startswith("freed memory ")
    if GLIBC and os.environ.get("CHAINRULE_KEEP_FREED_MEMORY", "1") != "0":
        assert memory.status().startswith("freed memory kept"), memory.status()


@pytest.mark.skipif(not GLIBC, reason="malloc_trim exists only in glibc (Linux)")
def test_release_hands_kept_memory_back():
    # 64 MiB touched and freed in a child: kept (RSS stays up), then released (RSS drops)
    script = """
import json
import chainrule, numpy as np
from chainrule.memory import release_freed_memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
before = rss()
arrays = [np.ones(1 << 20, np.float32) for _ in range(16)]
del arrays
kept = rss()
released = release_freed_memory()
print(json.dumps({"before": before, "kept": kept, "after": rss(), "released": released}))
"""
    env = {k: v for k, v in os.environ.items() if k != "CHAINRULE_KEEP_FREED_MEMORY"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["kept"] - out["before"] > 48, out  # MiB still held after the arrays were freed
    assert out["released"] is True, out
    assert out["kept"] - out["after"] > 48, out  # and handed back
