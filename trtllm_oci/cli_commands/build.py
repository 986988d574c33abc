"""`trtllm-oci build`: plan or run the quantize → convert → trtllm-build steps through the engine cache."""

from __future__ import annotations

import argparse
import json
import sys

from trtllm_oci.build_options import BuildLimits, KvCacheDtype, Quantization
from trtllm_oci.cli_commands.arg_types import int_at_least

HELP = """\
--backend tensorrt (the default) builds TensorRT-LLM engines (versions up to 1.2.1); --backend pytorch
prepares the Hugging Face checkpoint that TensorRT-LLM's PyTorch backend serves: a pre-quantized checkpoint is
recognised and taken as it is, otherwise --quant runs ModelOpt post-training quantization and exports a
checkpoint. Either way the result goes through the engine cache.
With --dry-run --json, prints {"cache_key", "image", "steps": [{"name", "argv"}...], "plan"} and runs nothing.
The steps run inside the TRT-LLM version's serving image (the version table links the two), with the model
mounted at /model, the work dir at /work and a TensorRT-LLM checkout of that version at /opt/tensorrt_llm.
The cache key covers the model commit, quantization, tp/pp, every build flag, the TRT-LLM version, the image
digest and the GPU architecture. Without a Docker engine to resolve the image digest, a dry run keys on the
image tag and says so in "cache_key_basis"; a real build always keys on the digest.
A dry run and a real build both check the model first (tp divides the attention and KV heads, pp ≤ layers,
--max-seq-len within the model's context) and are refused when the capacity planner says the engine will
not fit --shape (--force overrides the planner, not the model checks); both exit 2 then."""


def add_build_parser(sub: argparse._SubParsersAction) -> None:
    from trtllm_oci.versions import DEFAULT_TRTLLM_VERSION, supported_versions

    p = sub.add_parser("build", help="build TensorRT-LLM engines or prepare the checkpoint (--dry-run: the plan)",
                       description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face repo id or local model directory")
    p.add_argument("--backend", choices=["tensorrt", "pytorch"], default="tensorrt",
                   help="tensorrt: engines (default); pytorch: the checkpoint for the LLM API")
    p.add_argument("--revision", default="main", help="branch, tag or commit sha (Hugging Face models)")
    p.add_argument("--quant", choices=[q.value for q in Quantization], default="none")
    p.add_argument("--kv-cache-dtype", choices=[k.value for k in KvCacheDtype], default="auto")
    p.add_argument("--dtype", choices=["auto", "float16", "bfloat16", "float32"], default="auto",
                   help="weights/activations dtype; auto = the checkpoint's torch_dtype (float32 becomes float16)")
    p.add_argument("--calib-dataset", metavar="DIR",
                   help="local calibration set for quantize.py (datasets-loadable, train split, 'text' column); "
                        "default: quantize.py downloads cnn_dailymail")
    p.add_argument("--hf-home", metavar="DIR",
                   help="Hugging Face cache mounted as the build container's HF_HOME, Hub offline")
    p.add_argument("--tp", type=int_at_least(1, 64), default=1, help="tensor parallel size (default 1)")
    p.add_argument("--pp", type=int_at_least(1, 64), default=1, help="pipeline parallel size (default 1)")
    p.add_argument("--trtllm-version", default=DEFAULT_TRTLLM_VERSION, choices=supported_versions(),
                   help="default %(default)s")
    d = BuildLimits()
    p.add_argument("--max-batch-size", type=int_at_least(1), default=d.max_batch_size)
    p.add_argument("--max-input-len", type=int_at_least(1),
                   help=f"longest prompt (default {d.max_input_len}, capped below --max-seq-len)")
    p.add_argument("--max-seq-len", type=int_at_least(2),
                   help=f"prompt + output tokens (default {d.max_seq_len}, or the model's context when that is "
                        "shorter, as plan does)")
    p.add_argument("--max-num-tokens", type=int_at_least(1), default=d.max_num_tokens)
    p.add_argument("--shape", help="OCI shape to plan against (and whose GPU architecture to key on)")
    p.add_argument("--gpu-arch", help="e.g. sm90; default: from --shape, else nvidia-smi")
    p.add_argument("--image-digest", help="sha256:... of the serving image; default: asked from the Docker engine")
    p.add_argument("--workers", type=int_at_least(1), default=1, help="trtllm-build --workers")
    p.add_argument("--runner", choices=["docker", "local"], default="docker")
    p.add_argument("--trtllm-src", help="TensorRT-LLM checkout at the version's tag (default $TRTLLM_OCI_TRTLLM_SRC, "
                                        "else the verified source archive or the release image's examples/)")
    p.add_argument("--engine-cache", metavar="URI",
                   help="engine cache: a directory or oci://<bucket>@<namespace>/<prefix> "
                        "(default $TRTLLM_OCI_CACHE or ~/.cache/trtllm-oci/engines)")
    p.add_argument("--oci-auth", choices=["api_key", "instance_principal", "resource_principal", "security_token"],
                   default="api_key", help="OCI auth for an oci:// engine cache")
    p.add_argument("--oci-profile", default="DEFAULT", help="~/.oci/config profile for an oci:// engine cache")
    p.add_argument("--force", action="store_true", help="build even when the capacity planner says it will not fit")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_build)


# The spec fields the flags set: messages about the spec name the flag the user typed.
FLAG_NAMES = {
    "model": "--model", "model.hf_repo": "--model", "model.local_dir": "--model", "model.revision": "--revision",
    "quantization.method": "--quant", "quantization.kv_cache_dtype": "--kv-cache-dtype",
    "parallelism.tp": "--tp", "parallelism.pp": "--pp", "trtllm_version": "--trtllm-version",
    "build.max_batch_size": "--max-batch-size", "build.max_input_len": "--max-input-len",
    "build.max_seq_len": "--max-seq-len", "build.max_num_tokens": "--max-num-tokens",
    "build": "--max-input-len/--max-seq-len", "target.gpu_shape": "--shape", "target": "--shape",
    "parallelism": "--tp/--pp", "quantization.dtype": "--dtype", "serving.backend": "--backend",
    "quantization.calib_dataset": "--calib-dataset", "quantization.calib_dataset.local_dir": "--calib-dataset",
    "engine_cache.uri": "--engine-cache", "engine_cache": "--engine-cache",
}


def _spec(args: argparse.Namespace, context_tokens: int | None = None):
    """The flags as a release spec; an unset --max-seq-len is the default capped at the model's context
    (`context_tokens`) when that is shorter, with an unset --max-input-len below it, as plan fills them."""
    from trtllm_oci.build_options import BuildLimits
    from trtllm_oci.spec import ModelSource, parse_spec

    d = BuildLimits()
    max_seq_len = args.max_seq_len or min(d.max_seq_len, max(context_tokens or d.max_seq_len, 2))
    # Only a fitted length moves the prompt limit; an explicit --max-seq-len below it is the user's to resolve.
    max_input_len = args.max_input_len or (d.max_input_len if args.max_seq_len else min(d.max_input_len,
                                                                                         max_seq_len - 1))
    source = ModelSource.parse(args.model, args.revision)
    target = {"kind": "local", "gpu_shape": args.shape} if args.shape else {"kind": "local"}
    return parse_spec(
        {
            "model": source.model_dump(mode="json", exclude_none=True),
            "quantization": {"method": args.quant, "kv_cache_dtype": args.kv_cache_dtype, "dtype": args.dtype,
                             **({"calib_dataset": {"local_dir": args.calib_dataset}} if args.calib_dataset else {})},
            "parallelism": {"tp": args.tp, "pp": args.pp},
            "build": {"max_batch_size": args.max_batch_size, "max_input_len": max_input_len,
                      "max_seq_len": max_seq_len, "max_num_tokens": args.max_num_tokens},
            "trtllm_version": args.trtllm_version,
            "target": target,
            "serving": {"backend": args.backend},
            **({"engine_cache": {"uri": args.engine_cache, "auth": args.oci_auth, "profile": args.oci_profile}}
               if args.engine_cache else {}),
        },
        source="command line", names=FLAG_NAMES,
    )


def run_build(args: argparse.Namespace) -> int:
    from trtllm_oci.build.host import BuildHost
    from trtllm_oci.release.model import model_commit, model_facts
    from trtllm_oci.settings import current_settings

    spec = _spec(args)  # every flag checked before config.json is fetched
    settings = current_settings()
    if args.max_seq_len is None:
        spec = _spec(args, model_facts(spec.model, settings, settings.hf_token_value).context_tokens)
    host = BuildHost(runner=args.runner, trtllm_src_dir=args.trtllm_src, gpu_arch=args.gpu_arch,
                     image_digest=args.image_digest, workers=args.workers, hf_home=args.hf_home)
    if not args.dry_run:
        return _run_real_build(args, spec, settings, host)
    from pathlib import Path

    from trtllm_oci.release.artifact import dry_run_build
    from trtllm_oci.release.plan import preflight

    token = settings.hf_token_value
    local_dir = Path(spec.model.local_dir) if spec.model.local_dir is not None else None
    facts = model_facts(spec.model, settings, token)
    verdict = preflight(spec, facts, args.force).plan
    out = dry_run_build(spec, facts, model_commit(spec.model, settings, token, dry_run=True), host, args.gpu_arch,
                        local_dir)
    out["plan"] = None if verdict is None else {"shape": verdict.shape, "fits": verdict.fits, "reasons": verdict.reasons}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if verdict is None:
            print("plan: not run (no --shape to plan against)")
        else:
            print(f"plan on {verdict.shape}: {'fits' if verdict.fits else 'DOES NOT FIT (built anyway: --force)'}")
        print(f"image {out['image']}  cache key {out['cache_key']} ({out['cache_key_basis']})")
        if out.get("checkpoint_quantization"):
            q = out["checkpoint_quantization"]
            print(f"checkpoint: {q['method']} ({q['quant_algo'] or 'unquantized'}, read from {q['source']})")
        import shlex

        for s in out["steps"]:
            print(f"[{s['name']}] {shlex.join(s['argv'])}")
    return 0


def _run_real_build(args: argparse.Namespace, spec, settings, host) -> int:
    """The `build_engine` flow's stages, without Prefect: plan, download, prepare through the engine cache."""
    from pathlib import Path

    from trtllm_oci.cli_commands.progress import download_progress
    from trtllm_oci.model_facts import load_model_facts
    from trtllm_oci.release.artifact import prepare_artifact
    from trtllm_oci.release.model import fetch_model, model_facts
    from trtllm_oci.release.plan import preflight

    token = settings.hf_token_value
    # config.json alone first, so a release the checks refuse downloads no weights.
    preflight(spec, model_facts(spec.model, settings, token), args.force)
    model = fetch_model(spec.model, settings, token, progress=download_progress())
    facts = load_model_facts(Path(model.local_dir))
    existing = None
    if spec.serving.backend == "pytorch":
        from trtllm_oci.checkpoint.quant_config import read_checkpoint_quantization

        existing = read_checkpoint_quantization(Path(model.local_dir), spec.trtllm_version)
    artifact = prepare_artifact(spec, model, facts, preflight(spec, facts, args.force, existing).plan, settings,
                                lambda line: print(line, file=sys.stderr), host, args.force)
    if args.json:
        print(artifact.manifest.model_dump_json(indent=2))
    else:
        print(f"{'cache hit' if artifact.cache_hit else 'built'}: {artifact.manifest.key} at {artifact.manifest.uri}")
    return 0
