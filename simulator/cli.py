"""The `simulate` command.

    simulate SCENARIO.yaml              run a scenario (same as `simulate run SCENARIO.yaml`)
    simulate validate SCENARIO.yaml     check a scenario without running it
    simulate split SCENARIO.yaml        the per-point table and the separation point chosen
    simulate profile ...                measure a per-layer profile on this machine
    simulate profile --derive DEVICE    derive a profile for a device from its datasheet
    simulate models                     list models, blocks, separation points, exit sizes
    simulate report FOLDER              redraw a run's report from its saved results
    simulate data DATASET               say where a dataset is; fetch it first when it is missing
    simulate emulate SCENARIO.yaml      run the methods for real (two processes) against the simulator
    simulate emulate-worker --role ...  one worker of an emulated run (the cloud side on a server)

Bad input ends with one line on stderr and exit status 2.
"""
import argparse
import math
import os
import sys

from .core.errors import UserError

COMMANDS = ("run", "validate", "split", "profile", "models", "report", "data", "emulate", "emulate-worker")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        prefix = self.prog.removeprefix("simulate").strip()  # "profile: ..."; the top level needs none
        raise UserError(f"{prefix}: {message}" if prefix else message)


def build_parser() -> Parser:
    from .data.provision import DOWNLOAD_POLICIES
    from .data.specs import DATASETS

    parser = Parser(prog="simulate", description="Edge-cloud training simulator (hierarchical training, "
                    "split learning, full-cloud) across network bit rates.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    run = sub.add_parser("run", help="simulate a scenario and write reports/<scenario>/")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--no-train", action="store_true", help="skip real training (accuracy columns stay empty)")
    add_execution_flags(run)
    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("scenario", help="scenario YAML file")
    split = sub.add_parser("split", help="per separation point: time, edge memory, bytes sent, accuracy; and the "
                           "point chosen at each bit rate (split_points.csv, fig_split.png)")
    split.add_argument("scenario", help="scenario YAML file")
    split.add_argument("--no-progress", action="store_true", help="hide progress bars")
    split.add_argument("--no-train", action="store_true", help="choose on time and memory only (accuracy unchecked)")
    add_execution_flags(split)

    prof = sub.add_parser("profile", help="measure (or --derive) a per-layer profile",
                          description="Measure a per-layer profile on this machine, or with --derive compute "
                          "one for a datasheet device from a measured profile.")
    prof.add_argument("--model", help=MODEL_HELP)
    prof.add_argument("--dataset", choices=list(DATASETS))
    add_size_flags(prof)
    prof.add_argument("--batch-size", type=int, help="samples per batch (default 32; with --derive: the measured "
                      "profile's, and another size rescales its FLOPs and bytes)")
    prof.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    prof.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    prof.add_argument("--repeats", type=int, default=10, help="timed repeats per part (default 10)")
    prof.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs per part (default 2)")
    prof.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1.0)")
    prof.add_argument("--seed", type=int, default=0)
    prof.add_argument("--derive", metavar="DEVICE", help="derive for this datasheet device instead of measuring")
    prof.add_argument("--from", dest="from_profile", metavar="FILE", help="with --derive: the measured profile")
    prof.add_argument("--datasheets", help="with --derive: datasheet JSON (default: the shipped one, "
                      "simulator/profiling/datasheets.json)")
    prof.add_argument("--out", required=True, help="output profile JSON")
    prof.add_argument("--no-progress", action="store_true")

    models = sub.add_parser("models", help="list models, blocks, separation points and early-exit sizes")
    models.add_argument("--model", help=MODEL_HELP + " (default: vgg16 and resnet18)")
    models.add_argument("--dataset", choices=list(DATASETS), default="cifar10")
    models.add_argument("--width", type=float, default=1.0, help="channel width multiplier of vgg16 and resnet18")
    add_size_flags(models)
    models.add_argument("--list", action="store_true", help="list every model name that --model accepts")

    report = sub.add_parser("report", help="redraw report.html, report.md and the figures from saved results")
    report.add_argument("folder", help="a scenario's output folder, e.g. reports/low_bitrate")
    data = sub.add_parser("data", help="say where a dataset is; when it is missing, install or download it first")
    data.add_argument("dataset", choices=list(DATASETS))
    data.add_argument("--root", metavar="DIR", help="data folder (default: $SIMULATOR_DATA, else ./data; and "
                      "Debian's /usr/share/datasets for fashion-mnist)")
    data.add_argument("--download", choices=DOWNLOAD_POLICIES, default="auto", help="auto: Debian's "
                      "package with apt-get (as root), else the official download; network: only the download; "
                      "never: only look (default auto)")
    add_emulate_parsers(sub)
    return parser


MODEL_HELP = ("vgg16 or resnet18 (the paper's), a torchvision classifier (mobilenet_v2, resnet50, vit_b_16, ...) "
              "or your own as package.module:factory")


def add_size_flags(parser: argparse.ArgumentParser) -> None:
    """--input-size and --points (README, "Any model")."""
    parser.add_argument("--input-size", type=int, metavar="PIXELS", help="images resized to PIXELS x PIXELS "
                        "(default: the dataset's own size)")
    parser.add_argument("--points", metavar="A,B,...", help="separation points declared by hand (module paths in "
                        "execution order), for a model whose points tracing does not find")


def check_model_flag(args: argparse.Namespace) -> None:
    """--model names a known model (a one-line error naming the flag and the close matches)."""
    from .models import model_kind

    if args.model is not None:
        try:
            model_kind(args.model)
        except UserError as exc:
            raise UserError(f"--model: {exc}") from None


def points_flag(args: argparse.Namespace) -> tuple[str, ...] | None:
    if args.points is None:
        return None
    points = tuple(p.strip() for p in args.points.split(","))
    if not all(points):
        raise UserError(f"--points {args.points!r}: give module paths separated by commas, e.g. features.3,features.7")
    return points


def add_execution_flags(parser: argparse.ArgumentParser) -> None:
    """--engine, --workers, --executor, --ray-address (README, "Parallel and distributed sweeps")."""
    from .core.executors import EXECUTORS, all_cores
    from .engines import ENGINES

    parser.add_argument("--engine", choices=ENGINES, default="auto", help="simpy: event by event; fast: the "
                        "compiled recurrences; auto: simpy for deterministic runs, else fast (default auto)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="processes for the runs, or CPUs of "
                        f"a local Ray instance (default: every core, {all_cores()} here)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="local: this machine; ray: a Ray "
                        "cluster (pip install -e '.[ray]') (default local)")
    parser.add_argument("--ray-address", metavar="HOST:PORT", help="with --executor ray: the cluster's head node "
                        "(default: start a local Ray instance)")


def executor_of(args: argparse.Namespace):
    """The Executor the execution flags ask for; a bad combination is a one-line error."""
    from .core.executors import Executor, all_cores, check_ray_address, check_workers

    workers = check_workers(all_cores() if args.workers is None else args.workers)
    if args.ray_address is not None:
        if args.executor != "ray":
            raise UserError("--ray-address needs --executor ray")
        check_ray_address(args.ray_address)
    return Executor(args.executor, workers, args.ray_address)


def add_emulate_parsers(sub) -> None:
    emulate = sub.add_parser("emulate", help="run each method for real as an edge and a cloud process; compare "
                             "with the simulator (validation.csv)")
    emulate.add_argument("scenario", help="scenario YAML file")
    emulate.add_argument("--uplink-mbps", type=float, nargs="+", help="uplink rates (default: the scenario's)")
    emulate.add_argument("--batches", type=int, default=200, help="batches per run (default 200)")
    emulate.add_argument("--cloud", metavar="HOST:PORT", help="a cloud worker started with `emulate-worker --role "
                         "cloud` (default: start one on loopback)")
    emulate.add_argument("--timeout-s", type=float, default=60.0, help="longest wait for the peer: connecting, one "
                         "message (default 60)")
    emulate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    emulate.add_argument("--part-steps", metavar="FILE", help="predict with part steps measured earlier on these "
                         "machines (a part_steps.json); default: measure them at the start of the run")
    emulate.add_argument("--measure-steps", action="store_true", help="only time each worker's whole per-batch "
                         "step (part steps), each on its own machine, and write them (--out); no runs")
    emulate.add_argument("--out", metavar="FILE", help="with --measure-steps: where to write the part steps "
                         "(default: the scenario's output folder, part_steps.json)")
    worker = sub.add_parser("emulate-worker", help="one worker of `simulate emulate` (run the cloud side on a server)")
    worker.add_argument("scenario", help="scenario YAML file (the same as the edge's)")
    worker.add_argument("--role", choices=["edge", "cloud"], required=True)
    worker.add_argument("--listen", metavar="HOST:PORT", help="cloud: address and port to wait for the edge on")
    worker.add_argument("--cloud", metavar="HOST:PORT", help="edge: the cloud worker's address")
    worker.add_argument("--plan", help="edge: the runs, as `simulate emulate` writes them (JSON)")
    worker.add_argument("--result", help="edge: file to append one JSON line per measurement and run to")
    worker.add_argument("--timeout-s", type=float, default=60.0, help="longest wait for the peer (default 60)")
    worker.add_argument("--no-progress", action="store_true")


def check_sizes(args: argparse.Namespace) -> None:
    """Size flags within their limits (scenario/limits.py), before a model of that size is built."""
    from .scenario.limits import (
        MAX_ACCURACY_WIDTH,
        MAX_BATCH_SIZE,
        MAX_INPUT_SIZE,
        MAX_REPEATS,
        MAX_SEED,
        MAX_THREADS,
        check_flag_number,
    )

    check_flag_number("--width", args.width, MAX_ACCURACY_WIDTH)
    check_model_flag(args)
    if getattr(args, "input_size", None) is not None:
        check_flag_number("--input-size", args.input_size, MAX_INPUT_SIZE, minimum=1, allow_minimum=True)
    if args.command == "profile":
        if args.batch_size is not None:
            check_flag_number("--batch-size", args.batch_size, MAX_BATCH_SIZE, minimum=1, allow_minimum=True)
        check_flag_number("--seed", args.seed, MAX_SEED, allow_minimum=True)
        check_flag_number("--repeats", args.repeats, MAX_REPEATS, minimum=1, allow_minimum=True)
        check_flag_number("--warmup", args.warmup, MAX_REPEATS, allow_minimum=True)
        if args.threads is not None:
            check_flag_number("--threads", args.threads, MAX_THREADS, minimum=1, allow_minimum=True)


def cmd_profile(args: argparse.Namespace) -> None:
    from .core.files import check_writable
    from .profiling.schema import Profile

    check_sizes(args)
    check_writable(args.out)
    if args.derive:
        from .profiling.derive import (
            DEFAULT_DATASHEETS,
            derive_profile,
            load_datasheets,
        )

        if not args.from_profile:
            raise UserError("simulate profile --derive: --from FILE (a measured profile) is required")
        datasheets = args.datasheets or DEFAULT_DATASHEETS
        sheets = load_datasheets(datasheets)
        if args.derive not in sheets:
            raise UserError(f"{datasheets}: unknown device {args.derive!r}; valid: {', '.join(sheets)}")
        profile = derive_profile(Profile.load(args.from_profile), sheets[args.derive], args.from_profile,
                                 args.batch_size)
    else:
        from .profiling.measure import measure_profile

        for flag in ("model", "dataset"):
            if getattr(args, flag) is None:
                raise UserError(f"simulate profile: --{flag} is required (or use --derive)")
        batch_size = 32 if args.batch_size is None else args.batch_size
        profile = measure_profile(args.model, args.dataset, batch_size, args.device, args.threads,
                                  args.repeats, args.warmup, args.width, args.seed, progress=not args.no_progress,
                                  input_size=args.input_size, points=points_flag(args))
    profile.save(args.out)
    total_ms = sum(l.fwd_ms + l.bwd_ms + l.step_ms for l in profile.layers)
    print(f"wrote {args.out}: {profile.model}/{profile.dataset} batch {profile.batch_size} on "
          f"{profile.device.name} ({profile.source}); one training step {total_ms:.1f} ms")


def cmd_models(args: argparse.Namespace) -> None:
    from .data.specs import get_dataset_spec
    from .models import PAPER_MODELS, build_model, early_exit_param_count, known_names

    if args.list:
        print("\n".join(known_names()))
        print("or your own: package.module:factory (factory(num_classes) returns an nn.Module)")
        return
    check_sizes(args)
    spec = get_dataset_spec(args.dataset)
    raw = spec.raw_bytes_at(args.input_size)
    for name in [args.model] if args.model else list(PAPER_MODELS):
        model = build_model(name, args.dataset, args.width, args.input_size, points_flag(args))
        total = sum(p.numel() for p in model.parameters())
        size = "x".join(str(d) for d in model.input_shape)
        width = f"width {model.width:g}, " if model.source == "paper" else ""
        print(f"{name} for {args.dataset} at {size} ({width}{total:,} parameters); raw sample {raw:,} bytes (uint8)")
        column = max(10, *(len(info.name) for info in model.feature_info))
        print(f"  {'block':<{column}} {'out shape':<16} {'params':>11} {'exit params':>12} {'fp32 B/sample':>14} "
              f"{'vs raw':>7}")
        for info in model.feature_info:
            params = sum(p.numel() for p in model.block(info.name).parameters())
            is_point = info.name in model.split_points
            exit_params = f"{early_exit_param_count(info, spec.num_classes, model.width):,}" if is_point else "-"
            shape = "x".join(str(d) for d in info.shape)
            sent = 4 * math.prod(info.shape)
            print(f"  {info.name:<{column}} {shape:<16} {params:>11,} {exit_params:>12} {sent:>14,} "
                  f"{sent / raw:>6.2f}x")


def cmd_data(args: argparse.Namespace) -> None:
    from .data.provision import provision_dataset

    print(provision_dataset(args.dataset, args.root, args.download))


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report, written_text

    print(f"wrote {written_text(write_report(args.folder))}")


def refuse_fleet(path: str, command: str) -> None:
    """`command` runs one edge: a fleet scenario (edges:) gets one line saying so."""
    from .scenario.load import load_scenario

    if load_scenario(path).is_fleet:
        raise UserError(f"{path}: simulate {command} runs one edge device; this scenario is a fleet (edges:). Run it "
                        f"with `simulate {path}`, or give one edge (edge:) to {command} it")


def cmd_emulate(args: argparse.Namespace) -> None:
    from .emulation.launcher import emulate

    refuse_fleet(args.scenario, "emulate")

    emulate(args.scenario, args.uplink_mbps, args.batches, args.cloud, args.timeout_s, progress=not args.no_progress,
            part_steps=args.part_steps, measure_only=args.measure_steps, out=args.out)


def cmd_emulate_worker(args: argparse.Namespace) -> None:
    from .emulation.launcher import worker_main
    from .scenario.limits import MAX_TIMEOUT_S, check_flag_number

    check_flag_number("--timeout-s", args.timeout_s, MAX_TIMEOUT_S)
    address = args.listen if args.role == "cloud" else args.cloud
    if address is None:
        raise UserError(f"emulate-worker --role {args.role}: {'--listen' if args.role == 'cloud' else '--cloud'} "
                        f"HOST:PORT is required")
    worker_main(args.role, args.scenario, address, args.plan, args.result, args.timeout_s,
                progress=not args.no_progress)


def cmd_run(args: argparse.Namespace) -> None:
    from .fleet.runner import run_fleet
    from .scenario.load import load_scenario
    from .sweep.runner import run_scenario

    scenario = load_scenario(args.scenario)
    run = run_fleet if scenario.is_fleet else run_scenario
    run(scenario, progress=not args.no_progress, train=not args.no_train, engine=args.engine,
        executor=executor_of(args))


def cmd_split(args: argparse.Namespace) -> None:
    from .sweep.split_command import run_split

    refuse_fleet(args.scenario, "split")

    run_split(args.scenario, progress=not args.no_progress, train=not args.no_train, engine=args.engine,
              executor=executor_of(args))


def cmd_validate(args: argparse.Namespace) -> None:
    from .scenario.grid import settings
    from .scenario.load import load_scenario

    scenario = load_scenario(args.scenario)
    swept = f"; sweep: {len(settings(scenario)):,} settings, each valid" if scenario.sweep else ""
    print(f"{args.scenario}: valid ({scenario.summary()}{swept})")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # `simulate scenarios/x.yaml`, `simulate --no-train scenarios/x.yaml`
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        {"run": cmd_run, "validate": cmd_validate, "split": cmd_split, "profile": cmd_profile, "models": cmd_models,
         "report": cmd_report, "data": cmd_data, "emulate": cmd_emulate,
         "emulate-worker": cmd_emulate_worker}[args.command](args)
    except UserError as exc:
        print(f"simulate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simulate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
