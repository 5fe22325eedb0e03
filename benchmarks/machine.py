"""What the numbers were measured on: CPU, cores, load, BLAS threads and kernel, versions.

:func:`host_info` imports nothing heavy (the parent process calls it before any worker sets its
BLAS threads); :func:`blas_info` runs inside a worker, after NumPy is loaded.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

#: Environment variables that change how OpenBLAS picks its kernels and blocking. A stale
#: OPENBLAS_CORETYPE (e.g. one set for an older OpenBLAS) can slow a current NumPy a lot.
OPENBLAS_TUNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Thread-count variables the worker sets before NumPy (and torch) load.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_info() -> dict[str, Any]:
    """CPU, cores, load average, Python, and the OpenBLAS tuning variables as they are now."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cores(),
        "load_average_1_5_15": load,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "env": {name: os.environ.get(name) for name in OPENBLAS_TUNING_VARS + THREAD_VARS},
    }


def blas_info() -> dict[str, Any]:
    """NumPy's version and BLAS, and what threadpoolctl (if installed) says is loaded.

    threadpoolctl reports each native thread pool (OpenBLAS, MKL, OpenMP) with its thread count
    and, for OpenBLAS, the kernel ("architecture") it chose: the way to see whether
    OPENBLAS_CORETYPE took effect.
    """
    import numpy as np

    info: dict[str, Any] = {"numpy": np.__version__, "numpy_blas": None, "threadpools": None}
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.25
        blas = config["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy, or a layout change: the rest still works
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpools_note"] = "threadpoolctl not installed: thread counts not verified"
        return info
    info["threadpools"] = [
        {
            key: pool.get(key)
            for key in ("user_api", "internal_api", "prefix", "version", "num_threads",
                        "architecture", "threading_layer")
            if pool.get(key) is not None
        }
        for pool in threadpool_info()
    ]  # fmt: skip
    return info
