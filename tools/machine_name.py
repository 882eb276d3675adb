"""Print a descriptive asv machine name for this host: CPU model, CPU count and GPU model, e.g.
``amd-epyc-2cpu`` or ``intel-xeon-platinum-8480-16cpu-nvidia-h100-80gb-hbm3``.

asv files results per machine; naming the hardware (not a container's random host name) keeps results
of different machines apart in the dashboard and recognisable. Printing the name needs the standard
library only; ``--register NAME`` (run with asv installed) records NAME in ~/.asv-machine.json with
asv's own description of this host (CPU, CPU count, OS, architecture, RAM), which `asv machine --yes
--machine NAME` would leave out.
"""
import argparse
import os
import re
import subprocess


def _slug(text):
    text = re.sub(r"\((r|tm)\)|\b(cpu|processor|\d+-core)\b|@.*", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def gpu_model():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = out.stdout.strip().splitlines()
    return names[0] if out.returncode == 0 and names else None


def machine_name():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [_slug(cpu_model()), "{}cpu".format(cpus)]
    gpu = gpu_model()
    if gpu:
        parts.append(_slug(gpu))
    return "-".join(parts)


def register(name):
    """Record ``name`` as an asv machine with everything asv detects about this host."""
    from asv.machine import Machine, MachineCollection

    info = Machine.get_defaults()
    info["machine"] = name
    MachineCollection.save(name, info)
    return info


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--register", metavar="NAME", help="record NAME as this host's asv machine")
    args = parser.parse_args()
    print(register(args.register) if args.register else machine_name())
