r"""Regenerate the LLM-API facts (trtllm_oci/data/llm_api.json) from upstream TensorRT-LLM sources.

Developer tool, not run in CI. Two steps:

``extract SRC OUT``
    Reads one TensorRT-LLM version laid out as

        SRC/llm_args.py       tensorrt_llm/llmapi/llm_args.py
        SRC/serve.py          tensorrt_llm/commands/serve.py
        SRC/openai_server.py  tensorrt_llm/serve/openai_server.py
        SRC/config.pbtxt      triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt
        SRC/model.yaml        triton_backend/all_models/llmapi/tensorrt_llm/1/model.yaml
        SRC/model.py          triton_backend/all_models/llmapi/tensorrt_llm/1/model.py

    e.g. from a checkout: ``git -C TL show v1.2.1:tensorrt_llm/llmapi/llm_args.py > SRC/llm_args.py`` and so on,
    and writes the raw lists (``*.tsv``) into OUT (``tests/data/llm_api/<version>/``). Sources are parsed with
    ``ast`` (never imported: they need CUDA bindings), the config with the real ModelConfig protobuf.
    Write OUT/sources.json by hand: repo, path and commit of each list (see the 1.2.1 one).

``build DATA OUT_JSON``
    Reads every ``DATA/<version>/`` (the raw lists plus sources.json) and writes the JSON the package loads.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml

ROOT_CLASS = "TorchLlmArgs"
LISTS = (
    "llm_args_fields.tsv",
    "serve_flags.tsv",
    "routes.tsv",
    "llmapi_tensors.tsv",
    "llmapi_model_yaml.tsv",
)

# --- extract ---------------------------------------------------------------------------------


def _field_default(value: ast.expr | None) -> str:
    if value is None:
        return "<required>"
    if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) in (
        "Field",
        "PydanticField",
    ):
        for kw in value.keywords:
            if kw.arg == "default_factory":
                return "<factory>"
            if kw.arg == "default":
                return ast.unparse(kw.value)
        if value.args:
            first = value.args[0]
            return (
                "<required>"
                if isinstance(first, ast.Constant) and first.value is Ellipsis
                else ast.unparse(first)
            )
        return "<required>"
    return ast.unparse(value)


def _is_private(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Call) and getattr(value.func, "id", "") == "PrivateAttr"


def class_fields(cls: ast.ClassDef) -> list[tuple[str, str, str]]:
    """(name, annotation, default) of each pydantic field a class body declares."""
    rows = []
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        annotation = ast.unparse(node.annotation)
        if (
            name.startswith("_")
            or name == "model_config"
            or annotation.startswith("ClassVar")
            or _is_private(node.value)
        ):
            continue
        rows.append((name, annotation, _field_default(node.value)))
    return rows


def llm_args_rows(text: str) -> list[tuple[str, str, str, str]]:
    """(class, field, annotation, default): TorchLlmArgs and its in-module bases, then every option model
    (a class of the same module) that one of those fields names, transitively."""
    classes = {n.name: n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef)}
    chain, name = [], ROOT_CLASS
    while name in classes:
        chain.append(name)
        bases = [ast.unparse(b) for b in classes[name].bases]
        name = next((b for b in bases if b in classes and b.endswith("LlmArgs")), "")
    rows: list[tuple[str, str, str, str]] = []
    declared: dict[str, str] = {}
    for cls_name in reversed(chain):  # base first, so a subclass's redeclaration wins
        for field, annotation, default in class_fields(classes[cls_name]):
            declared[field] = cls_name
            rows = [r for r in rows if not (r[1] == field and r[0] in chain)]
            rows.append((cls_name, field, annotation, default))
    seen: set[str] = set(chain)
    queue = [r[2] for r in rows]
    while queue:
        annotation = queue.pop(0)
        for ref in re.findall(r"[A-Za-z_]\w*", annotation):
            if ref in classes and ref not in seen and ref.endswith("Config"):
                seen.add(ref)
                for field, ann, default in class_fields(classes[ref]):
                    rows.append((ref, field, ann, default))
                    queue.append(ann)
    return rows


def _strings(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def serve_rows(text: str) -> list[tuple[str, str]]:
    """(comma-joined flag names, LLM-API key it sets or '-') for each click option of `serve`."""
    tree = ast.parse(text)
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    targets: dict[str, str] = {}
    for node in ast.walk(funcs.get("get_llm_args", ast.FunctionDef(body=[]))):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Name):
                    targets.setdefault(value.id, key.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "KvCacheConfig":
            for kw in node.keywords:
                if isinstance(kw.value, ast.Name):
                    targets[kw.value.id] = f"kv_cache_config.{kw.arg}"
    rows = []
    for dec in funcs["serve"].decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "option":
            names = _strings(dec)
            flags = [n for n in names if n.startswith("--")]
            param = next((n for n in names if not n.startswith("-")), flags[0].lstrip("-"))
            rows.append((",".join(flags), targets.get(param, "-")))
    return rows


def route_rows(text: str) -> list[tuple[str, str]]:
    funcs = {n.name: n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    rows = []
    for node in ast.walk(funcs["register_routes"]):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_api_route":
            path = _strings(node)[0]
            methods = next(kw.value for kw in node.keywords if kw.arg == "methods")
            rows += [(m.value, path) for m in methods.elts]
    return rows


def tensor_rows(pbtxt: str) -> list[tuple[str, str, str, str, str]]:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    cfg = text_format.Parse(pbtxt, mc.ModelConfig())
    rows = []
    for io, tensors in (("input", cfg.input), ("output", cfg.output)):
        for t in tensors:
            optional = str(bool(getattr(t, "optional", False))).lower()
            dims = ",".join(str(d) for d in t.dims)
            rows.append((io, t.name, mc.DataType.Name(t.data_type), dims, optional))
    return rows


def model_yaml_rows(template: str, model_py: str) -> list[tuple[str, str, str]]:
    rows = []
    for key, value in yaml.safe_load(template).items():
        if isinstance(value, dict):
            rows += [("template", f"{key}.{k}", str(v)) for k, v in value.items()]
        else:
            rows.append(("template", key, str(value)))
    read = re.findall(r"triton_config\[\s*[\"'](\w+)[\"']\s*\]", model_py)
    guarded = set(re.findall(r"[\"'](\w+)[\"']\s+in\s+triton_config", model_py))
    for key in dict.fromkeys(read):
        rows.append(("triton_config", key, "optional" if key in guarded else "required"))
    return rows


def _write_tsv(path: Path, header: str, rows) -> None:
    path.write_text("# " + header + "\n" + "".join("\t".join(r) + "\n" for r in rows))


def extract(src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(
        out / LISTS[0], "class\tfield\tannotation\tdefault", llm_args_rows((src / "llm_args.py").read_text())
    )
    _write_tsv(out / LISTS[1], "flag names\twhat the flag sets", serve_rows((src / "serve.py").read_text()))
    _write_tsv(out / LISTS[2], "method\tpath", route_rows((src / "openai_server.py").read_text()))
    _write_tsv(
        out / LISTS[3], "io\tname\tdata_type\tdims\toptional", tensor_rows((src / "config.pbtxt").read_text())
    )
    _write_tsv(
        out / LISTS[4],
        "where\tkey\ttemplate value",
        model_yaml_rows((src / "model.yaml").read_text(), (src / "model.py").read_text()),
    )


# --- build -----------------------------------------------------------------------------------


def _read_tsv(path: Path, columns: int) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != columns:
            raise ValueError(f"{path}: expected {columns} tab-separated columns, got {len(cells)}: {line!r}")
        rows.append(cells)
    return rows


def build_version(vdir: Path) -> dict:
    sources = json.loads((vdir / "sources.json").read_text())
    fields = _read_tsv(vdir / LISTS[0], 4)
    models: dict[str, dict] = {}
    for cls, field, annotation, default in fields:
        models.setdefault(cls, {})[field] = {"type": annotation, "default": default}
    top = {
        n: {**spec, "declared_in": cls}
        for cls in models
        if cls.endswith("LlmArgs")
        for n, spec in models[cls].items()
    }
    option_models = {cls: spec for cls, spec in models.items() if not cls.endswith("LlmArgs")}

    def nested(spec: dict) -> dict:
        out = {}
        for name, field in spec.items():
            refs = [r for r in re.findall(r"[A-Za-z_]\w*", field["type"]) if r in option_models]
            if refs:
                out[name] = refs[0]
        return out

    flags = []
    for names, target in _read_tsv(vdir / LISTS[1], 2):
        flags.append({"names": names.split(","), "sets": None if target == "-" else target})
    yaml_group = next(f["names"] for f in flags if "--extra_llm_api_options" in f["names"])
    tensors = _read_tsv(vdir / LISTS[3], 5)

    def tensor(row):
        return {
            "name": row[1],
            "data_type": row[2],
            "dims": [int(d) for d in row[3].split(",")],
            "optional": row[4] == "true",
        }

    yaml_rows = _read_tsv(vdir / LISTS[4], 3)
    return {
        "sources": sources["lists"],
        "exact_release_source": sources["exact_release_source"],
        "why_not_exact": sources.get("why_not_exact"),
        "release_image": sources["release_image"],
        "llm_args": {"class": ROOT_CLASS, "fields": top, "nested": nested(top)},
        "option_models": {
            cls: {"fields": spec, "nested": nested(spec)} for cls, spec in option_models.items()
        },
        "serve": {"flags": flags, "yaml_flag": "--extra_llm_api_options", "yaml_flag_aliases": yaml_group},
        "routes": [{"method": m, "path": p} for m, p in _read_tsv(vdir / LISTS[2], 2)],
        "llmapi": {
            "model_in_image": sources["llmapi_model_in_triton_image"],
            "inputs": [tensor(r) for r in tensors if r[0] == "input"],
            "outputs": [tensor(r) for r in tensors if r[0] == "output"],
            "model_yaml_template": {k: v for where, k, v in yaml_rows if where == "template"},
            "triton_config_keys": {k: v for where, k, v in yaml_rows if where == "triton_config"},
        },
    }


def build(data: Path, out_json: Path) -> None:
    versions = {v.name: build_version(v) for v in sorted(data.iterdir()) if (v / "sources.json").is_file()}
    doc = {
        "comment": "Generated by tools/extract_llm_api_options.py build from tests/data/llm_api/<version>/; "
        "do not edit by hand. Each version names the upstream file every list was read from.",
        "versions": versions,
    }
    out_json.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    command, first, second = sys.argv[1:4]
    {"extract": extract, "build": build}[command](Path(first), Path(second))
