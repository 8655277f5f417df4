"""Log throughput: a build whose RUN step prints 100k lines, run by a real `manage.py qcluster`
worker on the embedded defaults. Checks that every line was persisted, in order; prints lines/s
over the Build stage and the worker process's peak RSS after each run (goal ≥ 20k lines/s, RSS
flat). The baseline, alternated with the runs in the same process: the same build through the
docker SDK here, reading the stream and keeping nothing.

    .venv/bin/python bench/engine_log_throughput.py [--lines 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_overhead import (
    RUN_DIR,
    GitServer,
    Worker,
    fresh_environment,
    make_workflow,
    setup_django,
    trigger,
    wait_finished,
    wait_task_saved,
)

LINE_RE = re.compile(r"^line (\d+)$", re.M)


def dockerfile(lines: int, marker: str) -> str:
    # The marker (an ARG default) keeps each build distinct; the output is just the lines.
    return (
        "FROM localhost/busybox:latest\n"
        f"ARG RUN_MARKER={marker}\n"
        f"RUN seq 1 {lines} | sed 's/^/line /'\n"
    )


def baseline(context: Path, lines: int) -> float:
    """The same build through the docker SDK, the stream read and dropped: seconds."""
    import docker

    from integrations.podman.engine import connect

    client = connect()
    began = time.monotonic()
    seen = 0
    tag = "localhost/workflows-bench/log-baseline:latest"
    for chunk in client.api.build(
        path=str(context), tag=tag, nocache=True, rm=True, forcerm=True, decode=True
    ):
        seen += chunk.get("stream", "").count("\n")
    took = time.monotonic() - began
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(tag)
    if seen < lines:
        raise RuntimeError(f"the baseline build printed {seen} lines, expected {lines}+")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.lines = min(max(args.lines, 1000), 2_000_000)
    args.runs = min(max(args.runs, 1), 10)

    env = fresh_environment("logs")
    setup_django()
    from executions.models import LogChunk

    git = GitServer()
    worker = Worker(env, "logs")
    files = {"Dockerfile": dockerfile(args.lines, "bench")}
    workflow, client = make_workflow(git, files)
    context = Path(tempfile.mkdtemp(prefix="log-baseline-", dir=RUN_DIR))
    atexit.register(shutil.rmtree, context, True)
    (context / "Dockerfile").write_text(files["Dockerfile"])
    print(f"{args.lines} lines per build; worker pid {worker.pid}, {env['DATABASE_URL']}")

    # A warm-up run (not counted), then the worker's resident memory before the big runs.
    small, _ = make_workflow(git, {"Dockerfile": dockerfile(1000, "warm-up")})
    wait_task_saved(wait_finished(trigger(client, small)[0]).pk)
    idle_rss = worker.rss_kb()
    print(f"worker RSS after a 1000-line warm-up run: {idle_rss / 1024:.1f} MiB")

    rates, base_rates = [], []
    for i in range(args.runs):
        base_rates.append(args.lines / baseline(context, args.lines))
        execution = wait_finished(trigger(client, workflow)[0], 600)
        wait_task_saved(execution.pk)
        if execution.status != "succeeded":
            raise RuntimeError(f"run ended {execution.status}: {execution.status_reason}")
        build = execution.stages.get(kind="build")
        seconds = (build.finished_at - build.started_at).total_seconds()
        text = "".join(
            LogChunk.objects.filter(stage_run=build).order_by("seq").values_list("text", flat=True)
        )
        numbers = [int(n) for n in LINE_RE.findall(text)]
        in_order = numbers == list(range(1, args.lines + 1))
        chunks = LogChunk.objects.filter(stage_run=build).count()
        rates.append(args.lines / seconds)
        print(
            f"  run {i + 1}: Build stage {seconds:.2f} s → {rates[-1]:,.0f} lines/s "
            f"(baseline {base_rates[-1]:,.0f} lines/s); {len(numbers)} lines persisted in "
            f"{chunks} chunks, all in order: {in_order}; worker peak RSS "
            f"{worker.rss_kb('VmHWM') / 1024:.1f} MiB, now {worker.rss_kb() / 1024:.1f} MiB"
        )
        if not in_order:
            raise RuntimeError("lines were lost or reordered")

    rate, base = statistics.median(rates), statistics.median(base_rates)
    peak = worker.rss_kb("VmHWM")
    print(
        f"median {rate:,.0f} lines/s over the Build stage; baseline (SDK, nothing kept) "
        f"{base:,.0f} lines/s; ratio {rate / base:.2f}"
    )
    print(
        f"worker peak RSS {peak / 1024:.1f} MiB vs {idle_rss / 1024:.1f} MiB after the warm-up "
        f"(+{(peak - idle_rss) / 1024:.1f} MiB for {args.runs} x {args.lines} lines)"
    )
    print(f"goal >= 20,000 lines/s: {'met' if rate >= 20_000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
