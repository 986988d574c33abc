"""Triton's `llmapi` model (the PyTorch backend behind Triton) as it starts inside a Model Deployment (TEST CODE).

The deployment's cmd is the serving image's launcher (trtllm_oci/serving/launch.py parse_args): it links its
serving root, then tritonserver loads the model repository; the llmapi model's upstream code then reads model.yaml
and starts the LLM API on the checkpoint. What the container holds is the artifact mount plus the files of the
image the service pulled (read from the registry by the deployment's digest, layer by layer), so a file the image
does not really ship cannot be linked.

The container does not come up (the bootstrap fails) when:
- the cmd is not the launcher in its Triton form (`--model-repository`, no command after `--`), or a --link target
  is missing in the container (launch.py build_serving_root);
- the repository has no `tensorrt_llm/config.pbtxt`, it does not parse as a ModelConfig, or its backend is not
  `python` (upstream's config.pbtxt: `backend: "python"`);
- `tensorrt_llm/1/model.py` is missing: the Python backend runs `<repository>/<model>/<version>/model.py`
  (triton-inference-server/python_backend:src/stub_launcher.cc@f9088ff6, "Python model file not found" in
  src/pb_stub.cc); or it is not upstream's llmapi model.py, the one the image ships at
  /app/all_models/llmapi/tensorrt_llm/1/model.py (this stand-in answers as that model);
- `tensorrt_llm/1/helpers.py` is missing: model.py does `from helpers import ...`, and the stub puts only the
  version directory (and its parent) on sys.path (src/pb_stub.cc@f9088ff6 StubSetup);
- the config.pbtxt tensors are not upstream's (names, types, dims, optional), as extracted in
  tests/data/llm_api/<version>/llmapi_tensors.tsv from triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt;
  model.py reads `text_output`'s config and the helpers read the inputs by those names;
- model.yaml is missing from the version directory model.py was loaded from: model.py reads
  `os.path.join(pb_utils.get_model_dir(), os.environ.get('LLM_CONFIG_PATH', 'model.yaml'))` and asserts it exists
  (NVIDIA/TensorRT-LLM:triton_backend/all_models/llmapi/tensorrt_llm/1/model.py
  @b35ac1b64368513d215c57d2ed01d62d910df8da get_model_config), or it is not a YAML mapping;
- model.yaml's `triton_config` lacks `max_batch_size` or `decoupled` (model.py indexes both), or names a key
  model.py does not read (llmapi_model_yaml.tsv), or differs from config.pbtxt: the launcher passes
  --disable-auto-complete-config, so Triton takes decoupled and max_batch_size from config.pbtxt while model.py
  takes them from model.yaml;
- any other model.yaml key is no TorchLlmArgs field (model.py passes them through update_llm_args_with_extra_dict
  to LLM(**args), whose pydantic model forbids extra keys; llm_args_fields.tsv), or a kv_cache_config key
  KvCacheConfig lacks; `backend` is not pytorch;
- `model` is not a checkpoint directory in the container (config.json, weights, tokenizer.json);
- tensor x pipeline parallel size is more than the shape's GPUs.

Requests follow Triton's generate extension (_LoadedRepository._request_problem) and then model.py: a key that is
not one of the model's inputs becomes a request parameter, which model.py ignores (so `max_tokens` does nothing and
the output has SamplingParams' default max_tokens, 32: tensorrt_llm/sampling_params.py); `streaming: true` on a
model that is not decoupled fails ("Streaming is only supported in decoupled mode."); every streamed response
carries the whole text so far (model.py _create_response sends CompletionOutput.text, which is cumulative).
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.standins.oci_services import (
    _FILLER,
    _MANIFEST_TYPES,
    SHAPE_LIMITS,
    DeploymentLaunch,
    _LoadedRepository,
)
from tests.standins.trtllm_serve_container import SHAPE_GPUS, ServeVersion, _rows

LAUNCHER = ["python3", "/opt/trtllm_oci/launch.py"]
MODEL = "tensorrt_llm"
IMAGE_MODEL_DIR = "/app/all_models/llmapi/tensorrt_llm"
SAMPLING_DEFAULT_MAX_TOKENS = 32


def image_files(registry_url: str, image: str, digest: str, authorization: Any = None) -> dict[str, bytes]:
    """Every regular file of the pulled image (path -> bytes), its layers applied in order (whiteouts delete)."""
    path = image.partition("/")[2].split("@", 1)[0]
    if ":" in path.rsplit("/", 1)[-1]:
        path = path.rsplit(":", 1)[0]

    def get(url: str, accept: str | None = None) -> bytes:
        headers = {"Accept": accept} if accept else {}
        if authorization is not None:
            headers["Authorization"] = authorization(path)
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            return answer.read()

    manifest = json.loads(get(f"{registry_url}/v2/{path}/manifests/{digest}", ", ".join(_MANIFEST_TYPES)))
    files: dict[str, bytes] = {}
    for layer in manifest.get("layers") or []:
        blob = get(f"{registry_url}/v2/{path}/blobs/{layer['digest']}")
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar.getmembers():
                name = "/" + member.name.lstrip("./")
                base = PurePosixPath(name)
                if base.name.startswith(".wh."):
                    gone = str(base.parent / base.name[len(".wh."):])
                    files = {p: b for p, b in files.items() if p != gone and not p.startswith(gone + "/")}
                elif member.isfile():
                    extracted = tar.extractfile(member)
                    files[name] = extracted.read() if extracted else b""
    return files


class _Files:
    """The container's files: the artifact mount, the image, and the serving root's links (nested names too)."""

    def __init__(self, mounted: dict[str, Any], image: dict[str, bytes]):
        self.readers: dict[str, Any] = dict(mounted)
        for path, data in image.items():
            self.readers.setdefault(path, lambda d=data: d)

    def exists(self, path: str) -> bool:
        path = path.rstrip("/")
        return path in self.readers or any(p.startswith(path + "/") for p in self.readers)

    def link(self, root: str, name: str, target: str) -> None:
        target, at = target.rstrip("/"), f"{root.rstrip('/')}/{name}"
        for path in [p for p in self.readers if p == target or p.startswith(target + "/")]:
            self.readers[at + path[len(target):]] = self.readers[path]

    def read(self, path: str) -> bytes | None:
        reader = self.readers.get(path)
        return reader() if reader is not None else None

    def children(self, path: str) -> set[str]:
        prefix = path.rstrip("/") + "/"
        return {p[len(prefix):].split("/", 1)[0] for p in self.readers if p.startswith(prefix)}


@dataclass
class _LoadedLlmapi(_LoadedRepository):
    """The loaded llmapi model answering the generate extension as upstream's model.py does."""

    decoupled: bool = True
    received: list[dict[str, Any]] = field(default_factory=list)

    def _decoupled(self, model: str) -> bool:
        return self.decoupled

    def answer(self, method: str, path: str, body: Any):
        status, payload = super().answer(method, path, body)
        if method == "POST":
            self.received.append({"path": path, "body": body, "status": status})
        return status, payload

    def _generate(self, model: str, config: Any, body: dict, *, stream: bool):
        prompt = body["text_input"]
        streaming = body.get("streaming") is True
        if streaming and not self.decoupled:
            return 400, {"error": "Error generating request: Streaming is only supported in decoupled mode."}
        n = int(body.get("sampling_param_max_tokens", SAMPLING_DEFAULT_MAX_TOKENS))
        filler = self.tokenizer.encode(_FILLER, add_special_tokens=False).ids
        ids = [filler[i % len(filler)] for i in range(n)]
        # helpers.py: sampling_param_exclude_input_from_output defaults to False.
        head = "" if body.get("sampling_param_exclude_input_from_output") is True else prompt
        texts = [head + self.tokenizer.decode(ids[:i + 1]) for i in range(n)]
        final = {"model_name": model, "model_version": "1", "text_output": texts[-1] if texts else head}
        if not stream:
            return 200, final
        steps = texts if streaming else [final["text_output"]]

        def sse():
            for text in steps:
                yield "data: " + json.dumps({"model_name": model, "model_version": "1", "text_output": text}) + "\n\n"

        return 200, sse()


@dataclass
class LlmapiRepositoryContainer:
    """The `-trtllm-python-py3` serving image of `trtllm_version` running the deployment's cmd."""

    trtllm_version: str = "1.2.1"
    #: (standin, image, digest) -> the image's files; default: read the pushed image from the stand-in's registry.
    read_image: Any = None
    _loaded: dict[str, Any] = field(default_factory=dict)
    started: list[dict[str, Any]] = field(default_factory=list)  # what each load read, for the tests

    def load(self, standin: Any, md: dict) -> _LoadedLlmapi | str:
        from google.protobuf import text_format
        from tokenizers import Tokenizer
        from tritonclient.grpc import model_config_pb2 as mc

        from trtllm_oci.serving.launch import parse_args, server_argv

        launch = DeploymentLaunch.of(md)
        model_cfg = md["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        model_id, env, cmd, key = launch.model_id, launch.env, launch.cmd, launch.key
        if key in self._loaded:
            return self._loaded[key]
        if cmd[:2] != LAUNCHER:
            return f"cmd {cmd[:2]} is not the serving image's launcher ({' '.join(LAUNCHER)})"
        try:
            args = parse_args(cmd[2:])
        except SystemExit:
            return f"launch.py refused its arguments {cmd[2:]}"
        if args.command or not args.model_repository:
            return "the llmapi model is served by tritonserver: launch.py needs --model-repository and no command"
        reference, digest = env.get("image") or "", env.get("imageDigest") or ""
        image = (self.read_image(standin, reference, digest) if self.read_image is not None
                 else image_files(standin.registry_url, reference, digest, standin.registry_authorization))
        files = _Files(standin.mounted_files(model_id), image)
        for item in args.link:
            name, _, target = item.partition("=")
            if not files.exists(target):
                return f"launch.py: --link {name}: {target} does not exist in this container"
            files.link(args.serving_root or "", name, target)
        if "--disable-auto-complete-config" not in server_argv(args):
            return "tritonserver would auto-complete the config from model.py; the checks below assume it does not"
        model_dir = f"{args.model_repository.rstrip('/')}/{MODEL}"
        raw_config = files.read(f"{model_dir}/config.pbtxt")
        if raw_config is None:
            return f"no model configuration found in {args.model_repository} (no {MODEL}/config.pbtxt)"
        try:
            pbtxt = text_format.Parse(raw_config.decode(), mc.ModelConfig())
        except text_format.ParseError as exc:
            return f"failed to load '{MODEL}': {exc}"
        if pbtxt.backend != "python":
            return f"failed to load '{MODEL}': backend {pbtxt.backend!r}; the llmapi model is a python backend model"
        version_dir = f"{model_dir}/1"
        model_py = files.read(f"{version_dir}/model.py")
        if model_py is None:
            return f"failed to load '{MODEL}': unable to find '{version_dir}/model.py'"
        if model_py != image.get(f"{IMAGE_MODEL_DIR}/1/model.py"):
            return f"failed to load '{MODEL}': {version_dir}/model.py is not the llmapi model.py this image ships"
        if files.read(f"{version_dir}/helpers.py") is None:
            return f"failed to load '{MODEL}': ModuleNotFoundError: No module named 'helpers'"
        problem = self._tensor_problem(pbtxt, mc)
        if problem:
            return f"failed to load '{MODEL}': {problem}"
        yaml_name = (env.get("environmentVariables") or {}).get("LLM_CONFIG_PATH", "model.yaml")
        yaml_path = str(PurePosixPath(version_dir) / yaml_name)
        raw_yaml = files.read(yaml_path)
        if raw_yaml is None:
            return f"failed to load '{MODEL}': '{yaml_name}' containing TRT-LLM engine args not found in '{version_dir}'"
        model_yaml = yaml.safe_load(raw_yaml)
        if not isinstance(model_yaml, dict):
            return f"failed to load '{MODEL}': {yaml_path} is not a YAML mapping"
        problem = self._model_yaml_problem(model_yaml, pbtxt, files, model_cfg)
        if problem:
            return f"failed to load '{MODEL}': {problem}"
        checkpoint = str(model_yaml["model"]).rstrip("/")
        tokenizer = Tokenizer.from_str(files.read(f"{checkpoint}/tokenizer.json").decode())  # type: ignore[union-attr]
        loaded = _LoadedLlmapi(configs={MODEL: pbtxt}, tokenizer=tokenizer,
                               decoupled=bool(model_yaml["triton_config"]["decoupled"]))
        self.started.append({"links": dict(item.partition("=")[::2] for item in args.link),
                             "model_repository": args.model_repository, "model_yaml": model_yaml,
                             "loaded": loaded})
        self._loaded[key] = loaded
        return loaded

    def _tensor_problem(self, pbtxt: Any, mc: Any) -> str | None:
        upstream = {(io_, name): (dtype, tuple(int(d) for d in dims.split(",")), optional == "true")
                    for io_, name, dtype, dims, optional in _rows(self.trtllm_version, "llmapi_tensors.tsv")}
        declared = {("input", t.name): (mc.DataType.Name(t.data_type), tuple(t.dims), t.optional) for t in pbtxt.input}
        declared |= {("output", t.name): (mc.DataType.Name(t.data_type), tuple(t.dims), False) for t in pbtxt.output}
        if declared != upstream:
            wrong = sorted(set(declared.items()) ^ set(upstream.items()))
            return f"its tensors are not the llmapi model's of TensorRT-LLM {self.trtllm_version}: {wrong[:4]}"
        return None

    def _model_yaml_problem(self, model_yaml: dict, pbtxt: Any, files: _Files, model_cfg: dict) -> str | None:
        rows = _rows(self.trtllm_version, "llmapi_model_yaml.tsv")
        triton_keys = {key: need for where, key, need in rows if where == "triton_config"}
        triton_config = model_yaml.get("triton_config")
        if not isinstance(triton_config, dict):
            return "KeyError: 'triton_config' (model.yaml)"
        for key, need in triton_keys.items():
            if need == "required" and key not in triton_config:
                return f"KeyError: '{key}' (model.yaml triton_config)"
        unknown = sorted(set(triton_config) - set(triton_keys))
        if unknown:
            return f"model.yaml triton_config keys {unknown} are read by no model.py of {self.trtllm_version}"
        if bool(triton_config["decoupled"]) != pbtxt.model_transaction_policy.decoupled:
            return (f"config.pbtxt decoupled {pbtxt.model_transaction_policy.decoupled} but model.yaml triton_config "
                    f"decoupled {triton_config['decoupled']}")
        if int(triton_config["max_batch_size"]) != pbtxt.max_batch_size:
            return (f"config.pbtxt max_batch_size {pbtxt.max_batch_size} but model.yaml triton_config max_batch_size "
                    f"{triton_config['max_batch_size']}")
        version = ServeVersion.of(self.trtllm_version)
        llm_args = {k: v for k, v in model_yaml.items() if k != "triton_config"}
        unknown = sorted(set(llm_args) - version.llm_args)
        if unknown:
            return f"TorchLlmArgs: extra inputs are not permitted: {unknown}"
        kv_unknown = sorted(set(llm_args.get("kv_cache_config") or {}) - version.kv_cache_config)
        if kv_unknown:
            return f"KvCacheConfig: extra inputs are not permitted: {kv_unknown}"
        if llm_args.get("backend", "pytorch") != "pytorch":
            return f"backend {llm_args['backend']!r}: the release serves a Hugging Face checkpoint with the PyTorch backend"
        checkpoint = str(llm_args.get("model") or "").rstrip("/")
        contents = files.children(checkpoint) if checkpoint.startswith("/") else set()
        if "config.json" not in contents or not any(n.endswith((".safetensors", ".bin")) for n in contents):
            return f"model {checkpoint!r} is not a Hugging Face checkpoint in this container ({sorted(contents)[:6]})"
        if "tokenizer.json" not in contents:
            return f"model {checkpoint!r} holds no tokenizer.json"
        tp, pp = int(llm_args.get("tensor_parallel_size") or 1), int(llm_args.get("pipeline_parallel_size") or 1)
        shape = (model_cfg.get("instanceConfiguration") or {}).get("instanceShapeName")
        gpus = SHAPE_LIMITS.get(shape, (None, SHAPE_GPUS.get(shape)))[1]
        if gpus is not None and tp * pp > gpus:
            return f"tp {tp} x pp {pp} = {tp * pp} ranks, but {shape} has {gpus} GPUs"
        return None


def write_llmapi_image_context(out: Path) -> dict[str, str]:
    """What the stand-in base image adds for the llmapi model: the two files of upstream's version directory, as
    marker text (this is test data; upstream's code is never copied). Returns path in the image -> text."""
    files = {f"{IMAGE_MODEL_DIR}/1/model.py": "# stand-in for upstream's llmapi model.py (TEST DATA)\n",
             f"{IMAGE_MODEL_DIR}/1/helpers.py": "# stand-in for upstream's llmapi helpers.py (TEST DATA)\n"}
    for path, text in files.items():
        target = out / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return files
