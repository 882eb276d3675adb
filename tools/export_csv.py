"""Export stored asv step times as the 2018 study's results CSV: one row per measured step.

    python tools/export_csv.py --machine amd-epyc-2cpu-small --profile small [-o results.csv]

The study's scripts appended one row per timed batch to results/results.csv with the columns
``bench, experiment, name, parameters, runtime, version`` (runtime in seconds, parameters the model's
trainable parameter count, version the framework's), and its plots took medians over those rows. The
same columns come first here, so the study's analysis reads this file; four more say where each row
comes from: ``stack, profile, machine, commit``.

- A row per sample where asv kept them (``asv run --record-samples``); otherwise one row per cell with
  asv's median, and ``statistic`` says which (``sample`` or ``median``).
- ``experiment`` is the study's name for the scenario (e.g. ``4x320-BIDIR-LSTM_CTC``) at the study's
  (seed) sizes only; at another profile the profile is part of it (``4x320-BIDIR-LSTM_CTC@small``), so a
  reduced-size time is never filed under the full scenario's name.
- Skipped and failed cells have no time and no row.
"""
import argparse
import ast
import csv
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_table  # noqa: E402
from benchmarks import scenarios  # noqa: E402

COLUMNS = ["bench", "experiment", "name", "parameters", "runtime", "version",
           "stack", "profile", "machine", "commit", "statistic"]
STUDY_EXPERIMENTS = {
    "1x320/CE-short": "1x320-LSTM_cross-entropy_100",
    "1x320/CE-long": "1x320-LSTM_cross-entropy",
    "4x320/CE-long": "4x320-BIDIR-LSTM_cross-entropy",
    "4x320/CTC-long": "4x320-BIDIR-LSTM_CTC",
}
STUDY_PROFILE = "seed"
# The package whose version is the framework's (asv records each requirement's version with the results).
FRAMEWORK_PACKAGES = {
    "pytorch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",),
    "lasagne": ("lasagne",), "jax": ("jax",), "pytensor": ("pytensor",),
}


def experiment(scenario, profile):
    name = STUDY_EXPERIMENTS[scenario]
    return name if profile == STUDY_PROFILE else "{}@{}".format(name, profile)


def framework_version(framework, result_params):
    for package in FRAMEWORK_PACKAGES.get(framework, (framework,)):
        if result_params.get(package):
            return result_params[package]
    return ""


def rows(result_sets, profile):
    """The CSV rows (dicts of COLUMNS) of every TrainingStep.time_step cell with a time."""
    for result in result_sets:
        for key in result.get_all_result_keys():
            if not key.endswith("." + results_table.STEP):
                continue
            framework = key.split(".")[0][len("bench_"):]
            params = result.get_result_params(key)
            values = result.get_result_value(key, params)
            samples = result.get_result_samples(key, params)
            for (scenario, implementation), value, cell_samples in zip(itertools.product(*params), values, samples):
                if results_table._missing(value):
                    continue
                scenario, implementation = ast.literal_eval(scenario), ast.literal_eval(implementation)
                common = {
                    "bench": "{}_{}".format(framework, implementation),
                    "experiment": experiment(scenario, profile),
                    "name": key,
                    "parameters": scenarios.parameter_count(scenarios.spec(scenario, profile)),
                    "version": framework_version(framework, result.params),
                    "stack": results_table._stack(result.env_name),
                    "profile": profile,
                    "machine": result.params.get("machine", ""),
                    "commit": result.commit_hash[:8],
                }
                runtimes = [("sample", s) for s in cell_samples] if cell_samples else [("median", value)]
                for statistic, runtime in runtimes:
                    yield dict(common, runtime=repr(float(runtime)), statistic=statistic)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", required=True)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--results-dir", default=os.path.join(results_table.ROOT, "results"))
    parser.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    result_sets = results_table.load(args.machine, args.profile, args.results_dir)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows(result_sets, args.profile))
    finally:
        if args.output:
            out.close()


if __name__ == "__main__":
    main()
