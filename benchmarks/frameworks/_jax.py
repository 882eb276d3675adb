"""What the JAX framework module and Keras 3 on its JAX backend share: the thread pin, the device's
description and peak memory, and a synchronising float of a device scalar.

XLA sizes its CPU thread pool once, when its client starts, from the CPUs the process may run on; it has no
run-time setting. ``pin_threads`` therefore narrows the calling thread's CPU affinity before the client
starts (the pool's threads inherit it), and afterwards reports the count fixed then.
"""
import os

# Several workloads (tests) share one GPU: allocate as needed instead of 75% of the device up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

_pinned = None  # the thread count XLA's CPU client started with, once it has


def pin_threads(threads):
    """Restrict this process to ``threads`` CPUs before XLA starts; return the count XLA uses."""
    global _pinned
    if _pinned is None:
        import jax

        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if available is not None and threads < len(available):
            os.sched_setaffinity(0, available[:threads])
        jax.devices()  # starts the client now, with this affinity
        _pinned = len(os.sched_getaffinity(0)) if available is not None else threads
    return _pinned


def device():
    import jax

    return jax.devices()[0]


def describe():
    dev = device()
    if dev.platform == "cpu":
        return "cpu ({} threads)".format(_pinned if _pinned is not None else "default")
    return "{} ({})".format(dev.platform, dev.device_kind)


def device_peak_bytes():
    """Peak bytes in use on the device since the process started (XLA keeps no resettable peak), or
    None on the host."""
    dev = device()
    if dev.platform == "cpu":
        return None
    stats = dev.memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def scalar(value):
    """A device scalar as a Python float: waits for the computation that produced it."""
    return float(value)
