"""Print a descriptive asv machine name for this host: CPU model, CPU count and GPU model, e.g.
``amd-epyc-2cpu`` or ``intel-xeon-platinum-8480-16cpu-nvidia-h100-80gb-hbm3``.

asv files results per machine; naming the hardware (not a container's random host name) keeps results
of different machines apart in the dashboard and recognisable. Printing the name needs the standard
library only; ``--register NAME`` (run with asv installed) records NAME in ~/.asv-machine.json with
asv's own description of this host (CPU, CPU count, OS, architecture, RAM), which `asv machine --yes
--machine NAME` would leave out, with the CPU's family, model and widest vector extension added to asv's
CPU description.

Cloud guests often hide the CPU's model number: a KVM guest reports "AMD EPYC" on Zen 3, Zen 4 and Zen 5
hosts alike, and the same code ran twice as fast on the Zen 5 as on the Zen 3 (README, "A second machine").
Where the model name carries no number, the name adds the x86 family and model, e.g.
``amd-epyc-family26-model2-2cpu``. One identity keeps the bare name it had before this rule:
``AMD EPYC`` family 25, model 1, the only hardware ever read under ``amd-epyc-2cpu`` (LEGACY_NAMES).
"""
import argparse
import os
import re
import subprocess


def _slug(text):
    text = re.sub(r"\((r|tm)\)|\b(cpu|processor|\d+-core)\b|@.*", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def cpu_info(path="/proc/cpuinfo"):
    """The first processor's fields of /proc/cpuinfo ({} where there is none, as on macOS)."""
    fields = {}
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(info=None):
    info = cpu_info() if info is None else info
    return info.get("model name") or "cpu"


# Widest first: the first one a CPU has names its vector unit in asv's CPU description.
VECTOR_EXTENSIONS = ("avx512f", "avx2", "avx", "sse4_2", "asimd", "neon")

# Machine names given before family and model were added to generic CPU names, by the identity they were
# read from: results/ holds this hardware's results under the bare name, and its sessions keep adding to them.
LEGACY_NAMES = {("AMD EPYC", "25", "1"): "amd-epyc"}


def cpu_identity(info=None):
    """(model name, x86 family, x86 model); family and model are None where /proc/cpuinfo has none."""
    info = cpu_info() if info is None else info
    return cpu_model(info), info.get("cpu family"), info.get("model")


def cpu_slug(info=None):
    """The CPU part of the machine name: the model name's slug, plus the x86 family and model where the model
    name has no number to tell one generation from another (a guest's "AMD EPYC")."""
    model, family, number = cpu_identity(info)
    if (model, family, number) in LEGACY_NAMES:
        return LEGACY_NAMES[(model, family, number)]
    slug = _slug(model) or "cpu"  # _slug drops the word "cpu" itself
    if not re.search(r"\d", slug) and family and number:
        slug += "-family{}-model{}".format(family, number)
    return slug


def cpu_description(info=None):
    """asv's CPU text with what tells hosts of one model name apart: "AMD EPYC (family 26, model 2,
    avx512f)"."""
    info = cpu_info() if info is None else info
    model, family, number = cpu_identity(info)
    details = ["family {}".format(family), "model {}".format(number)] if family and number else []
    flags = set((info.get("flags") or info.get("Features") or "").split())
    details += [ext for ext in VECTOR_EXTENSIONS if ext in flags][:1]
    return "{} ({})".format(model, ", ".join(details)) if details else model


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
    parts = [cpu_slug(), "{}cpu".format(cpus)]
    gpu = gpu_model()
    if gpu:
        parts.append(_slug(gpu))
    return "-".join(parts)


def register(name):
    """Record ``name`` as an asv machine with everything asv detects about this host."""
    from asv.machine import Machine, MachineCollection

    info = Machine.get_defaults()
    info["machine"] = name
    if cpu_info():
        info["cpu"] = cpu_description()
    MachineCollection.save(name, info)
    return info


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--register", metavar="NAME", help="record NAME as this host's asv machine")
    args = parser.parse_args()
    print(register(args.register) if args.register else machine_name())
