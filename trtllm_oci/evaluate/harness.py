"""lm-evaluation-harness, run in a child process: check a task set, or score an endpoint on it.

Why a child process: lm-eval task YAMLs name their data files relative to the working directory
(`datasets.load_dataset("json", data_files=...)`), so the child runs in the task set's directory and a task set
is self-contained wherever it lies; the child is also offline (`HF_HUB_OFFLINE`, `HF_DATASETS_OFFLINE`), so a
task whose data is not in the set fails to load instead of reaching the Hub, and lm-eval's global logging and
seeding stay out of the calling process.

Only the task set's own tasks are indexed (`TaskManager(include_defaults=False)`): lm-eval's built-in tasks
fetch their data from the Hub at run time, which an offline gate cannot do, and indexing their 14,000 YAMLs
costs ~12 s.

Run as `python -m trtllm_oci.evaluate.harness {check,run} REQUEST_JSON OUT_JSON` (what `check_task_set` and
`run_harness` do).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trtllm_oci.errors import InputError, ProcessError

HARNESS_DIST = "lm-eval"
# How the gate calls the harness (model arguments, seeds, metric naming). A change that could move a score
# bumps it, so cached baselines are measured again.
GATE_PROTOCOL = 1
LOG_TAIL_LINES = 40

ErrorKind = Literal["unknown_task", "load_failed", "harness_missing", "evaluation_failed"]


class HarnessMissingError(InputError):
    """lm-eval is not installed where the gate runs."""


class UnknownTaskError(InputError):
    """A task the spec names is not in the task set."""


class TaskSetLoadError(InputError):
    """The task set's YAMLs or data do not load."""


class HarnessRunError(ProcessError):
    """The harness failed while scoring an endpoint."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskInfo(_Frozen):
    name: str
    output_type: str = Field(description="lm-eval's: loglikelihood, loglikelihood_rolling, multiple_choice, generate_until")
    higher_is_better: dict[str, bool] = Field(description="Each metric the task reports, and its direction")
    docs: int = Field(description="Documents the task evaluates (before any limit)")

    @property
    def reads_prompt_logprobs(self) -> bool:
        """Tasks scored by log-likelihood: the endpoint must return the prompt's token logprobs (echo)."""
        return self.output_type != "generate_until"


class EndpointTarget(_Frozen):
    """An OpenAI-compatible completions endpoint, as lm-eval's `local-completions` model reaches it."""

    completions_url: str = Field(description="http://host:port/v1/completions")
    model: str = Field(min_length=1, description="The served model name")
    tokenizer_dir: Path = Field(description="The served model's tokenizer (lm-eval tokenizes prompts itself)")
    max_length: int = Field(ge=2, description="The model's context in tokens")
    num_concurrent: int = Field(default=1, ge=1)
    timeout_s: int = Field(default=600, ge=1)


class HarnessRequest(_Frozen):
    task_dir: Path
    tasks: tuple[str, ...] = Field(min_length=1)
    datasets_cache: Path = Field(description="HF_DATASETS_CACHE for the child: where the task data is converted")
    limit: int | None = Field(default=None, ge=1, description="At most this many documents per task")
    target: EndpointTarget | None = None


class HarnessScores(_Frozen):
    """What the harness measured: per task, per metric (lm-eval's names; `metric,filter` unless the filter is
    `none`), with each metric's direction and the documents scored."""

    harness: str
    scores: dict[str, dict[str, float]]
    higher_is_better: dict[str, dict[str, bool]]
    samples: dict[str, int]


def harness_version() -> str:
    """The harness and the gate's way of calling it, e.g. 'lm-eval 0.4.13; gate protocol 1' (a baseline key part)."""
    try:
        version = importlib.metadata.version(HARNESS_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise HarnessMissingError(
            "the quality gate runs lm-evaluation-harness, which is not installed here; install the eval extra "
            "(pip install 'trtllm-oci[eval]' -c constraints.txt) or remove `evaluation:` from the spec") from None
    return f"{HARNESS_DIST} {version}; gate protocol {GATE_PROTOCOL}"


def check_task_set(request: HarnessRequest, log: Callable[[str], None] | None = None,
                   timeout_s: float = 900) -> list[TaskInfo]:
    """Load the requested tasks and their data (no model): each task's type, metrics and document count.
    Raises UnknownTaskError or TaskSetLoadError naming the task set and the task."""
    harness_version()
    out = _run_child("check", request, log, timeout_s)
    return [TaskInfo.model_validate(t) for t in out["tasks"]]


def run_harness(request: HarnessRequest, log: Callable[[str], None] | None = None,
                timeout_s: float = 4 * 3600) -> HarnessScores:
    """Score `request.target` on the task set."""
    if request.target is None:
        raise ValueError("run_harness needs request.target (the endpoint to score)")
    version = harness_version()
    out = _run_child("run", request, log, timeout_s)
    return HarnessScores(harness=version, scores=out["scores"], higher_is_better=out["higher_is_better"],
                         samples=out["samples"])


def _run_child(mode: str, request: HarnessRequest, log: Callable[[str], None] | None, timeout_s: float) -> dict:
    task_dir = Path(request.task_dir)
    if not task_dir.is_dir():
        raise TaskSetLoadError(f"evaluation task set {task_dir} is not a directory; point evaluation.task_set at a "
                               "directory of lm-eval task YAMLs and their data files")
    request.datasets_cache.mkdir(parents=True, exist_ok=True)
    out_path = request.datasets_cache / f".harness-{mode}-{os.getpid()}-{id(request)}.json"
    out_path.unlink(missing_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_DATASETS_CACHE": str(request.datasets_cache), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "trtllm_oci.evaluate.harness", mode, request.model_dump_json(), str(out_path)]
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    process = subprocess.Popen(argv, cwd=task_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace")
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if log is not None and line.strip():
                log(line)
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise HarnessRunError(f"lm-eval ({mode}) on {task_dir} ran past {timeout_s:.0f}s") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    try:
        result = json.loads(out_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    finally:
        out_path.unlink(missing_ok=True)
    if isinstance(result, dict) and "error" in result:
        kind, message = result["error"]["kind"], result["error"]["message"]
        error_type: type[Exception] = {"unknown_task": UnknownTaskError, "load_failed": TaskSetLoadError,
                                       "harness_missing": HarnessMissingError}.get(kind, HarnessRunError)
        raise error_type(message)
    if code != 0 or not isinstance(result, dict):
        shown = "\n  ".join(tail) or "(no output)"
        raise HarnessRunError(f"lm-eval ({mode}) on {task_dir} exited with code {code}; its output ended with:\n  "
                              f"{shown}")
    return result


# ------------------------------------------------------------------------------------------- child side


def _metric_key(metric: str, filter_name: str) -> str:
    return metric if filter_name == "none" else f"{metric},{filter_name}"


def _task_manager(request: HarnessRequest):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=".", include_defaults=False)
    known = set(manager.all_tasks)
    missing = [t for t in request.tasks if t not in known]
    if missing:
        defined = ", ".join(sorted(manager.all_subtasks)) or "none"
        raise _ChildError("unknown_task", f"evaluation.tasks names {missing}, which the task set at "
                          f"{Path.cwd()} does not define (it defines: {defined}); lm-eval's built-in tasks are not "
                          "offered because they fetch their data from the Hub at run time: add a task YAML and its "
                          "data to the task set")
    return manager


def _load_tasks(request: HarnessRequest, manager) -> dict[str, Any]:
    try:
        return manager.load(list(request.tasks))["tasks"]
    except Exception as exc:  # noqa: BLE001 - any failure to build a task is the task set's
        raise _ChildError("load_failed", f"the evaluation task set at {Path.cwd()} does not load tasks "
                          f"{list(request.tasks)}: {type(exc).__name__}: {exc}") from exc


def _task_info(name: str, task: Any) -> dict[str, Any]:
    directions = dict(task.higher_is_better())
    filters = [f.name for f in getattr(task, "_filters", [])] or ["none"]
    metrics = {_metric_key(m, f): bool(hib) for m, hib in directions.items() for f in filters}
    return {"name": name, "output_type": task.OUTPUT_TYPE, "higher_is_better": metrics,
            "docs": len(list(task.eval_docs))}


def _check(request: HarnessRequest) -> dict[str, Any]:
    manager = _task_manager(request)
    tasks = _load_tasks(request, manager)
    return {"tasks": [_task_info(name, task) for name, task in tasks.items()]}


def _run(request: HarnessRequest) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    assert request.target is not None
    target = request.target
    manager = _task_manager(request)
    _load_tasks(request, manager)  # a load failure is reported as the task set's, before any request is sent
    model_args = {
        "base_url": target.completions_url, "model": target.model, "tokenizer": str(target.tokenizer_dir),
        "tokenizer_backend": "huggingface", "tokenized_requests": True, "max_length": target.max_length,
        "num_concurrent": target.num_concurrent, "max_retries": 2, "timeout": target.timeout_s,
    }
    try:
        results = simple_evaluate(model="local-completions", model_args=model_args, tasks=list(request.tasks),
                                  task_manager=manager, limit=request.limit, log_samples=False, bootstrap_iters=0)
    except Exception as exc:  # noqa: BLE001 - reported to the parent with its type
        raise _ChildError("evaluation_failed", f"lm-eval scoring {target.completions_url} ({target.model}) on "
                          f"{list(request.tasks)} failed: {type(exc).__name__}: {exc}") from exc
    assert results is not None
    scores: dict[str, dict[str, float]] = {}
    directions: dict[str, dict[str, bool]] = {}
    for task, values in results["results"].items():
        scores[task] = {}
        for key, value in values.items():
            if "," not in key or "_stderr" in key or not isinstance(value, int | float):
                continue
            metric, filter_name = key.split(",", 1)
            if not math.isfinite(float(value)):
                raise _ChildError("evaluation_failed", f"lm-eval scored {task} {metric} as {value}: the endpoint's "
                                  "answers gave no finite score")
            scores[task][_metric_key(metric, filter_name)] = float(value)
        raw = results.get("higher_is_better", {}).get(task, {})
        directions[task] = {k: bool(raw[k.split(",")[0]]) for k in scores[task] if k.split(",")[0] in raw}
    samples = {task: int(n.get("effective", 0)) for task, n in results.get("n-samples", {}).items()}
    return {"scores": scores, "higher_is_better": directions, "samples": samples}


class _ChildError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("check", "run"):
        print("usage: python -m trtllm_oci.evaluate.harness {check,run} REQUEST_JSON OUT_JSON", file=sys.stderr)
        return 64
    mode, raw, out = args
    request = HarnessRequest.model_validate_json(raw)
    try:
        result = _check(request) if mode == "check" else _run(request)
        code = 0
    except ModuleNotFoundError as exc:
        result, code = {"error": {"kind": "harness_missing", "message": f"lm-eval cannot run here: {exc}; install "
                                  "the eval extra (pip install 'trtllm-oci[eval]' -c constraints.txt)"}}, 2
    except _ChildError as exc:
        result, code = {"error": {"kind": exc.kind, "message": exc.message}}, 2
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
