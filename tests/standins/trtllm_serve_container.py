"""trtllm-serve as it starts inside a Model Deployment (TEST CODE): the deployment's cmd is parsed the way
`trtllm-serve` parses it, checked against what the container really holds under the artifact mount, and the
OpenAI routes are then answered by the strict trtllm-serve stand-in (tests/standins/openai_server.py).

The deployment's cmd is trtllm-serve itself, or the serving image's launcher (trtllm_oci/serving/launch.py:
`python3 /opt/trtllm_oci/launch.py --serving-root S --link NAME=TARGET ... -- trtllm-serve ...`), which links the
serving root and then runs the command; paths under S resolve through those links.

The container does not come up (the bootstrap fails, as a real trtllm-serve would exit) when:
- a --link target does not exist in the container (launch.py build_serving_root);
- the command is not `trtllm-serve MODEL [OPTIONS]`. `trtllm-serve` is a click `DefaultGroup` whose unknown
  first word resolves to `serve` (tensorrt_llm/commands/serve.py@00209af1 `DefaultGroup.resolve_command`);
  an option the version's `serve` does not define is click's "No such option" exit. The option list is the
  raw extraction of that file, tests/data/llm_api/<version>/serve_flags.tsv (its source in sources.json);
  `--trust_remote_code`, `--fail_fast_on_attention_window_too_large` and `--enable_chunked_prefill` are
  `is_flag=True` there (no value), every other option takes one value;
- `--host` is missing or a loopback name: serve.py's default is `localhost`, and `launch_server` binds exactly
  that host, which the service's router cannot reach from outside the container (the BYOC contract is a server
  on `serverPort` of the container, mod-dep-byoc.htm);
- `--port` differs from the deployment's `serverPort`/`healthCheckPort` (the service calls those ports; serve.py's
  default port is 8000);
- `--backend` is not pytorch (the release serves Hugging Face checkpoints with the LLM API);
- MODEL is not a directory under the mount holding `config.json` and weights (`*.safetensors`/`*.bin`): the
  PyTorch backend loads the Hugging Face checkpoint from that path (`PyTorchLLM(model=...)`);
- the `--config`/`--extra_llm_api_options` file is missing, not a YAML mapping (serve.py `yaml.safe_load` then
  `update_llm_args_with_extra_dict`), or names a key TorchLlmArgs does not declare (its pydantic model forbids
  extra keys; tests/data/llm_api/<version>/llm_args_fields.tsv), or a kv_cache_config key KvCacheConfig lacks;
- tensor x pipeline parallel size is more than the shape's GPUs (the MPI session cannot start that many ranks);
- MODEL_DEPLOY_HEALTH_ENDPOINT / MODEL_DEPLOY_PREDICT_ENDPOINT name no GET / POST route of the version's
  `OpenAIServer.register_routes` (tests/data/llm_api/<version>/routes.tsv): the health check would fail.

Once up, a /v1/chat/completions request to a MODEL whose tokenizer has no chat template (no chat_template.jinja,
chat_template.json or `chat_template` in tokenizer_config.json) is answered 400 BadRequestError, as trtllm-serve
does: `openai_chat` formats the messages with `apply_chat_template`, transformers raises without a template, and
the handler's `except Exception` returns `create_error_response(str(e))`, whose default status is 400
(tensorrt_llm/serve/openai_server.py@0c8de69a, 1.2.0rc8).

The served model name is MODEL's base name (`OpenAIServer`: `self.model = model_dir.name` for a local
directory, cited in trtllm_oci/llm_api/serve_command.py); 1.2.1 has no --served_model_name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import yaml

from tests.standins.oci_services import MOUNT, SHAPE_LIMITS, DeploymentLaunch, _ContainerFiles
from tests.standins.openai_server import OpenAIStandIn

UPSTREAM_LISTS = Path(__file__).resolve().parents[1] / "data" / "llm_api"
VALUELESS_FLAGS = frozenset({"--trust_remote_code", "--fail_fast_on_attention_window_too_large",
                             "--enable_chunked_prefill"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# GPUs per instance of shapes SHAPE_LIMITS does not cover (gpu_shapes.yaml cites Oracle's shape pages).
SHAPE_GPUS = {"BM.GPU.H100.8": 8, "BM.GPU.A100-v2.8": 8, "BM.GPU.L40S.4": 4, "BM.GPU.H200.8": 8}


def _rows(version: str, name: str) -> list[list[str]]:
    text = (UPSTREAM_LISTS / version / name).read_text()
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@dataclass(frozen=True)
class ServeVersion:
    """What `trtllm-serve` of one version accepts, from the raw upstream extractions."""

    options: frozenset[str]
    yaml_options: frozenset[str]
    llm_args: frozenset[str]
    kv_cache_config: frozenset[str]
    get_routes: frozenset[str]
    post_routes: frozenset[str]

    @classmethod
    def of(cls, version: str) -> ServeVersion:
        options = {name for names, _ in _rows(version, "serve_flags.tsv") for name in names.split(",")}
        yaml_names = next(names for names, _ in _rows(version, "serve_flags.tsv") if "--config" in names.split(","))
        fields = _rows(version, "llm_args_fields.tsv")
        llm_args = {f[1] for f in fields if f[0] in ("BaseLlmArgs", "TorchLlmArgs")}
        kv = {f[1] for f in fields if f[0] == "KvCacheConfig"}
        routes = _rows(version, "routes.tsv")
        return cls(frozenset(options), frozenset(yaml_names.split(",")), frozenset(llm_args), frozenset(kv),
                   frozenset(p for m, p in routes if m == "GET"), frozenset(p for m, p in routes if m == "POST"))


def parse_serve_argv(argv: list[str], version: ServeVersion) -> tuple[str, dict[str, str | bool]] | str:
    """(MODEL, {option: value}) as click would parse `trtllm-serve` argv, or why it exits."""
    if not argv or argv[0] != "trtllm-serve":
        return f"cmd {argv[:1]} is not trtllm-serve"
    args = argv[1:]
    if args and args[0] == "serve":
        args = args[1:]
    model = None
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            if model is not None:
                return f"Error: Got unexpected extra argument ({arg})"
            model = arg
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        if name not in version.options:
            return f"Error: No such option: {name}"
        if name in VALUELESS_FLAGS:
            options[name] = True
            i += 1
            continue
        if eq:
            options[name] = inline
            i += 1
            continue
        if i + 1 >= len(args):
            return f"Error: Option '{name}' requires an argument."
        options[name] = args[i + 1]
        i += 2
    if model is None:
        return "Error: Missing argument 'MODEL'."
    return model, options


def _option(options: dict[str, str | bool], *names: str) -> str | None:
    for name in names:
        if name in options:
            value = options[name]
            return value if isinstance(value, str) else None
    return None


def _has_chat_template(files: _ContainerFiles, model: str) -> bool:
    from trtllm_oci.checkpoint.chat_template import CHAT_TEMPLATE_JINJA, CHAT_TEMPLATE_JSON, TOKENIZER_CONFIG

    if (files.read(f"{model}/{CHAT_TEMPLATE_JINJA}") or b"").strip():
        return True
    for name in (CHAT_TEMPLATE_JSON, TOKENIZER_CONFIG):
        try:
            data = json.loads(files.read(f"{model}/{name}") or b"{}")
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("chat_template"):
            return True
    return False


@dataclass
class _ServingTrtllm:
    server: OpenAIStandIn
    chat_template: bool = True

    def answer(self, method: str, path: str, body: Any):
        if method == "POST" and path == "/v1/chat/completions" and not self.chat_template:
            return 400, {"object": "error", "type": "BadRequestError", "param": None, "code": 400, "message": (
                "Cannot use chat template functions because tokenizer.chat_template is not set and no template "
                "argument was passed! For information about writing templates and setting the "
                "tokenizer.chat_template attribute, please see the documentation at "
                "https://huggingface.co/docs/transformers/main/en/chat_templating")}
        with httpx.Client(timeout=30) as client:
            if method == "GET":
                response = client.get(self.server.url + path)
                return response.status_code, response.content
            if not (isinstance(body, dict) and body.get("stream")):
                response = client.post(self.server.url + path, json=body)
                return response.status_code, response.json() if response.content else b""
            # A stream: read it whole here, then hand the events on (the stand-in's predict routes re-chunk them).
            with client.stream("POST", self.server.url + path, json=body) as response:
                raw = response.read().decode()
            if response.status_code >= 400:
                return response.status_code, json.loads(raw or "{}")
        events = [block + "\n\n" for block in raw.split("\n\n") if block.strip()]
        return 200, iter(events)


@dataclass
class TrtllmServeContainer:
    """The release image (`nvcr.io/nvidia/tensorrt-llm/release:<version>`) running the deployment's cmd."""

    server: OpenAIStandIn
    trtllm_version: str = "1.2.1"
    _loaded: dict[str, Any] = field(default_factory=dict)
    started: list[dict[str, Any]] = field(default_factory=list)  # what each load parsed, for the tests

    def load(self, standin: Any, md: dict) -> _ServingTrtllm | str:
        launch = DeploymentLaunch.of(md)
        model_cfg = md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        model_id, env, cmd, key = launch.model_id, launch.env, launch.cmd, launch.key
        if key in self._loaded:
            return self._loaded[key]
        version = ServeVersion.of(self.trtllm_version)
        serving_root, links = None, {}
        if cmd[:2] == ["python3", "/opt/trtllm_oci/launch.py"]:
            from trtllm_oci.serving.launch import parse_args

            try:
                args = parse_args(cmd[2:])
            except SystemExit:
                return f"launch.py refused its arguments {cmd[2:]}"
            if not args.command:
                return "launch.py was not given a command to run after --"
            serving_root, links = args.serving_root, dict(link.partition("=")[::2] for link in args.link)
            cmd = args.command
        files = _ContainerFiles(standin.mounted_files(model_id), serving_root, links)
        for name, target in links.items():
            if not files.exists(target):
                return f"launch.py: --link {name}: {target} does not exist in this container"
        parsed = parse_serve_argv(cmd, version)
        if isinstance(parsed, str):
            return parsed
        model, options = parsed
        host = _option(options, "--host") or "localhost"
        if host in LOOPBACK:
            return f"trtllm-serve listens on {host}, which the service cannot reach from outside the container"
        port = int(_option(options, "--port") or 8000)
        for port_key in ("serverPort", "healthCheckPort"):
            if env.get(port_key) not in (None, port):
                return f"the service calls {port_key} {env[port_key]}; trtllm-serve listens on {port}"
        backend = _option(options, "--backend") or "pytorch"
        if backend != "pytorch":
            return f"--backend {backend}: the release serves a Hugging Face checkpoint with the PyTorch backend"
        roots = tuple(f"{r.rstrip('/')}/" for r in (MOUNT, serving_root) if r)
        if not model.startswith(roots):
            return f"MODEL {model} is neither under the artifact mount {MOUNT} nor a linked serving root"
        contents = files.children(model)
        if "config.json" not in contents:
            return f"MODEL {model} holds no config.json (it holds {sorted(contents)[:8]})"
        if not any(name.endswith((".safetensors", ".bin")) for name in contents):
            return f"MODEL {model} holds no weights (*.safetensors / *.bin)"
        yaml_path = next((options[n] for n in version.yaml_options if n in options), None)
        extra: dict[str, Any] = {}
        if isinstance(yaml_path, str):
            raw = files.read(yaml_path)
            if raw is None:
                return f"{yaml_path}: No such file or directory"
            extra = yaml.safe_load(raw) or {}
            if not isinstance(extra, dict):
                return f"{yaml_path} is not a YAML mapping of LLM-API options"
            unknown = sorted(set(extra) - version.llm_args)
            if unknown:
                return f"TorchLlmArgs: extra inputs are not permitted: {unknown}"
            kv_unknown = sorted(set(extra.get("kv_cache_config") or {}) - version.kv_cache_config)
            if kv_unknown:
                return f"KvCacheConfig: extra inputs are not permitted: {kv_unknown}"
        tp = int(extra.get("tensor_parallel_size") or _option(options, "--tensor_parallel_size", "--tp_size") or 1)
        pp = int(extra.get("pipeline_parallel_size") or _option(options, "--pipeline_parallel_size", "--pp_size") or 1)
        shape = (model_cfg.get("instanceConfiguration") or {}).get("instanceShapeName")
        gpus = SHAPE_LIMITS.get(shape, (None, SHAPE_GPUS.get(shape)))[1]
        if gpus is not None and tp * pp > gpus:
            return f"tp {tp} x pp {pp} = {tp * pp} ranks, but {shape} has {gpus} GPUs"
        variables = env.get("environmentVariables") or {}
        health = variables.get("MODEL_DEPLOY_HEALTH_ENDPOINT")
        if health is not None and health not in version.get_routes:
            return f"MODEL_DEPLOY_HEALTH_ENDPOINT {health} is no GET route of trtllm-serve {self.trtllm_version}"
        predict = variables.get("MODEL_DEPLOY_PREDICT_ENDPOINT")
        if predict is not None and predict not in version.post_routes:
            return f"MODEL_DEPLOY_PREDICT_ENDPOINT {predict} is no POST route of trtllm-serve {self.trtllm_version}"
        self.server.served_model = PurePosixPath(model).name
        self.started.append({"model": model, "options": options, "llm_api_options": extra})
        loaded = _ServingTrtllm(self.server, _has_chat_template(files, model))
        self._loaded[key] = loaded
        return loaded
