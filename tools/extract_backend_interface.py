r"""Regenerate trtllm_oci/data/repo_interfaces.json from upstream config.pbtxt templates.

Developer tool, not shipped. Upstream templates are laid out as <src_root>/<dir>/<model>.pbtxt, and
<src_root>/sources.json (a copy of tools/backend_interface_sources.json) maps each interface id to its "dir",
upstream "repo"/"ref"/"path", and optionally "derive": "1.2". To lay out the templates from a clone of
triton-inference-server/tensorrtllm_backend:

    for t in $(git -C BE tag | grep -E '^v0\.([5-9]|1[0-9])\.[0-9]+$'); do mkdir -p SRC/$t
      for m in ensemble preprocessing postprocessing tensorrt_llm tensorrt_llm_bls; do
        git -C BE show $t:all_models/inflight_batcher_llm/$m/config.pbtxt > SRC/$t/$m.pbtxt || rm SRC/$t/$m.pbtxt
      done; done
    cp tools/backend_interface_sources.json SRC/sources.json
    python tools/extract_backend_interface.py SRC trtllm_oci/data/repo_interfaces.json

Templates are parsed with the real protobuf schema (tritonclient's ModelConfig) after replacing the
`${...}` placeholders that sit in non-string positions with a neutral value; the placeholder names are
recorded so that the assembler can fill them from typed options. Consecutive releases with identical
templates collapse into one interface entry (listed under source.same_in).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

MODELS = ("ensemble", "preprocessing", "postprocessing", "tensorrt_llm", "tensorrt_llm_bls")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# Non-string fields that upstream templates fill with ${...}; a neutral value keeps the parser happy.
NEUTRAL = {
    "max_batch_size": "0",
    "decoupled": "false",
    "count": "1",
    "max_queue_delay_microseconds": "0",
    "max_queue_size": "0",
    "preferred_batch_size": "1",
}


def _neutralize(text: str) -> tuple[str, dict]:
    """Replace non-string placeholders, remembering which field/tensor each one templated."""
    templated: dict = {"data_type": {}, "fields": {}}
    last_name = None
    out_lines = []
    for line in text.splitlines():
        stripped = line.split("#", 1)[0]
        m_name = re.match(r'\s*name\s*:\s*"([^"]+)"', stripped)
        if m_name:
            last_name = m_name.group(1)
        m_field = re.search(r"(\w+)\s*:\s*\[?\s*\$\{(\w+)\}", stripped)
        if m_field and '"' not in stripped.split(":", 1)[1].split("$")[0]:
            field, param = m_field.groups()
            if field == "data_type":
                templated["data_type"][last_name] = param
                line = line.replace(f"${{{param}}}", "TYPE_FP32")
            elif field == "backend":
                templated["fields"]["backend"] = param
            else:
                templated["fields"][field] = param
                line = line.replace(f"${{{param}}}", NEUTRAL[field])
        out_lines.append(line)
    return "\n".join(out_lines), templated


def _tensor(t, templated_types: dict, is_input: bool) -> dict:
    row = {
        "name": t.name,
        "data_type": (
            f"${{{templated_types[t.name]}}}" if t.name in templated_types else mc.DataType.Name(t.data_type)
        ),
        "dims": list(t.dims),
    }
    if is_input:
        row["optional"] = bool(t.optional)
        if t.allow_ragged_batch:
            row["allow_ragged_batch"] = True
    if t.HasField("reshape"):
        row["reshape"] = list(t.reshape.shape)
    return row


def _unique(tensors: list[dict]) -> list[dict]:
    # BE@v0.19.0 and TL 1.x ensemble/config.pbtxt list the output kv_cache_alloc_total_blocks twice.
    seen: set[str] = set()
    return [t for t in tensors if not (t["name"] in seen or seen.add(t["name"]))]


def extract_model(text: str) -> dict:
    neutral, templated = _neutralize(text)
    cfg = text_format.Parse(neutral, mc.ModelConfig())
    fields = templated["fields"]
    model: dict = {
        "platform": cfg.platform or None,
        "backend": ("${{{}}}".format(fields["backend"])) if "backend" in fields else (cfg.backend or None),
        "max_batch_size": (
            "${{{}}}".format(fields["max_batch_size"]) if "max_batch_size" in fields else cfg.max_batch_size
        ),
        "decoupled": (
            "${{{}}}".format(fields["decoupled"])
            if "decoupled" in fields
            else (
                cfg.model_transaction_policy.decoupled if cfg.HasField("model_transaction_policy") else None
            )
        ),
        # Which dynamic_batching fields the template fills (field -> placeholder); None: no dynamic batching.
        "dynamic_batching": (
            {
                f: f"${{{fields[f]}}}"
                for f in ("preferred_batch_size", "max_queue_delay_microseconds", "max_queue_size")
                if f in fields
            }
            if cfg.HasField("dynamic_batching")
            else None
        ),
        "inputs": _unique([_tensor(t, templated["data_type"], True) for t in cfg.input]),
        "outputs": _unique([_tensor(t, templated["data_type"], False) for t in cfg.output]),
        "parameters": {k: v.string_value for k, v in sorted(cfg.parameters.items())},
    }
    if cfg.instance_group:
        group = cfg.instance_group[0]
        model["instance_group"] = {
            "kind": mc.ModelInstanceGroup.Kind.Name(group.kind),
            "count": "${{{}}}".format(fields["count"]) if "count" in fields else group.count,
        }
    if cfg.HasField("ensemble_scheduling"):
        model["steps"] = [
            {
                "model_name": s.model_name,
                "input_map": dict(sorted(s.input_map.items())),
                "output_map": dict(sorted(s.output_map.items())),
            }
            for s in cfg.ensemble_scheduling.step
        ]
    return model


# --- 1.2 interface -------------------------------------------------------------------------
# The searchable store holds TL:triton_backend/all_models/inflight_batcher_llm/*/config.pbtxt only at
# scattered 1.x commits (tensorrt_llm @0c8de69a = version.py 1.2.0rc8; ensemble @2a9abd95;
# preprocessing @08dc37e3; postprocessing @89fd9b74; tensorrt_llm_bls @0193dbd4), and the full
# NVIDIA/TensorRT-LLM git history is too large to fetch. The 1.2 templates are therefore BE@v0.19.0
# plus the differences below, each read off those TL files.
_BOOL_INPUT = '  {{\n    name: "{name}"\n    data_type: TYPE_BOOL\n    dims: [ 1 ]\n{reshape}    optional: true\n  }},\n'
_INT32_OUTPUT = '  {{\n    name: "{name}"\n    data_type: TYPE_INT32\n    dims: [ 1 ]\n  }},\n'


def _add_return_num_tokens(text: str, reshape: bool) -> str:
    """Insert return_num_{input,output}_tokens inputs after return_perf_metrics, and the
    num_{input,output}_tokens outputs after total_draft_tokens."""
    r = "    reshape: { shape: [ ] }\n" if reshape else ""
    new_inputs = "".join(
        _BOOL_INPUT.format(name=n, reshape=r) for n in ("return_num_input_tokens", "return_num_output_tokens")
    )
    anchor = text.index('name: "return_perf_metrics"')
    block_end = text.index("},\n", anchor) + 3
    text = text[:block_end] + new_inputs + text[block_end:]
    out_anchor = text.index('name: "total_draft_tokens"', text.index("output ["))
    out_end = text.index("}", out_anchor) + 1
    new_outputs = ",\n" + "".join(
        _INT32_OUTPUT.format(name=n) for n in ("num_input_tokens", "num_output_tokens")
    ).rstrip(",\n")
    return text[:out_end] + new_outputs + text[out_end:]


def _rename_sampling(text: str) -> str:
    return text.replace('"min_length"', '"min_tokens"').replace('"random_seed"', '"seed"')


def derive_1_2_templates(v0_19: dict[str, str]) -> dict[str, str]:
    out = dict(v0_19)
    trt = _add_return_num_tokens(_rename_sampling(v0_19["tensorrt_llm"]), reshape=True)
    pet = trt.index('name: "prompt_embedding_table"')
    trt = trt[:pet] + trt[pet:].replace("TYPE_FP16", "${prompt_embedding_table_data_type}", 1)
    trt = re.sub(
        r"# enable_trt_overlap is deprecated[^\n]*\n((?:# [^\n]*\n)+)",
        lambda m: "\n".join(line[2:] for line in m.group(1).splitlines()) + "\n",
        trt,
    )
    out["tensorrt_llm"] = trt
    ens = _add_return_num_tokens(_rename_sampling(v0_19["ensemble"]), reshape=False)
    route_in = "".join(
        f'      input_map {{\n        key: "{n}"\n        value: "{n}"\n      }}\n'
        for n in ("return_num_input_tokens", "return_num_output_tokens")
    )
    route_out = "".join(
        f'      output_map {{\n        key: "{n}"\n        value: "{n}"\n      }}\n'
        for n in ("num_input_tokens", "num_output_tokens")
    )
    step_start = ens.index('model_name: "tensorrt_llm"')
    i = ens.index('key: "return_perf_metrics"', step_start)
    i = ens.index("}", i) + 1
    ens = ens[:i] + "\n" + route_in + ens[i:]
    j = ens.index('key: "total_draft_tokens"', step_start)
    j = ens.index("}", j) + 1
    ens = ens[:j] + "\n" + route_out + ens[j:]
    out["ensemble"] = ens
    out["tensorrt_llm_bls"] = _add_return_num_tokens(
        _rename_sampling(v0_19["tensorrt_llm_bls"]), reshape=True
    )
    pre = v0_19["preprocessing"]
    k = pre.index("}", pre.index('name: "IMAGE_URL"')) + 2
    pre = (
        pre[:k]
        + '\n    {\n        name: "IMAGES"\n        data_type: TYPE_STRING\n        dims: [ -1 ]\n        optional: true\n    },'
        + pre[k:]
    )
    s = pre.index('name: "IMAGE_SIZES"')
    pre = pre[:s] + pre[s:].replace("dims: [ 2 ]", "dims: [ -1, 2 ]", 1)
    pre += (
        '\nparameters: {\n  key: "hf_model_path"\n  value: {\n    string_value: "${hf_model_path}"\n  }\n}\n'
    )
    out["preprocessing"] = pre
    return out


def main(src_root: Path, out_path: Path) -> None:
    sources = json.loads((src_root / "sources.json").read_text())
    interfaces: dict = {}
    previous_models = None
    for interface_id, source in sources.items():
        texts = {
            name: (src_root / source["dir"] / f"{name}.pbtxt").read_text()
            for name in MODELS
            if (src_root / source["dir"] / f"{name}.pbtxt").exists()
        }
        if source.get("derive") == "1.2":
            texts = derive_1_2_templates(texts)
        models = {name: extract_model(text) for name, text in texts.items()}
        if models == previous_models:
            # Same templates as the previous release: one entry per interface generation.
            interfaces[next(reversed(interfaces))]["source"].setdefault("same_in", []).append(source["ref"])
            continue
        previous_models = models
        public_source = {k: v for k, v in source.items() if k not in ("dir", "derive")}
        interfaces[interface_id] = {"source": public_source, "models": models}
    doc = {
        "comment": "Generated by tools/extract_backend_interface.py from the upstream templates named in "
        "each 'source'; do not edit by hand. Keys are the first TRT-LLM version of each interface.",
        "interfaces": interfaces,
    }
    out_path.write_text(_compact_json(doc) + "\n")


def _compact_json(doc: dict) -> str:
    """Indented JSON with each tensor and each ensemble step map on a single line, for reviewable diffs."""
    text = json.dumps(doc, indent=1)
    return re.sub(
        r"\{\n\s+\"name\"[^{}]*?\}",
        lambda m: json.dumps(json.loads(m.group(0))),
        text,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
