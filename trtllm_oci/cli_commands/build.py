"""`trtllm-oci build`: plan or run the quantize → convert → trtllm-build steps through the engine cache."""

from __future__ import annotations

import argparse
import json
import re
import sys

from trtllm_oci.spec import BuildLimits, KvCacheDtype, Quantization

HELP = """\
With --dry-run --json, prints {"cache_key", "image", "steps": [{"name", "argv"}...]} and runs nothing.
The steps run inside the TRT-LLM version's serving image (the version table links the two), with the model
mounted at /model, the work dir at /work and a TensorRT-LLM checkout of that version at /opt/tensorrt_llm.
The cache key covers the model commit, quantization, tp/pp, every build flag, the TRT-LLM version, the image
digest and the GPU architecture. Without a Docker engine to resolve the image digest, a dry run keys on the
image tag and says so in "cache_key_basis"; a real build always keys on the digest.
A real build is refused when the capacity planner says it will not fit --shape (use --force to override)."""


def add_build_parser(sub: argparse._SubParsersAction) -> None:
    from trtllm_oci.engine.versions import DEFAULT_TRTLLM_VERSION, supported_versions

    p = sub.add_parser("build", help="build TensorRT-LLM engines (or show the plan with --dry-run)", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face repo id or local model directory")
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
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--trtllm-version", default=DEFAULT_TRTLLM_VERSION, choices=supported_versions(),
                   help="default %(default)s")
    d = BuildLimits()
    p.add_argument("--max-batch-size", type=int, default=d.max_batch_size)
    p.add_argument("--max-input-len", type=int, default=d.max_input_len)
    p.add_argument("--max-seq-len", type=int, default=d.max_seq_len)
    p.add_argument("--max-num-tokens", type=int, default=d.max_num_tokens)
    p.add_argument("--shape", help="OCI shape to plan against (and whose GPU architecture to key on)")
    p.add_argument("--gpu-arch", help="e.g. sm90; default: from --shape, else nvidia-smi")
    p.add_argument("--image-digest", help="sha256:... of the serving image; default: asked from the Docker engine")
    p.add_argument("--workers", type=int, default=1, help="trtllm-build --workers")
    p.add_argument("--runner", choices=["docker", "local"], default="docker")
    p.add_argument("--trtllm-src", help="TensorRT-LLM checkout at the version's tag (default $TRTLLM_OCI_TRTLLM_SRC, "
                                        "else the verified source archive or the release image's examples/)")
    p.add_argument("--engine-cache", metavar="URI",
                   help="engine cache: a directory or oci://<bucket>@<namespace>/<prefix> "
                        "(default $TRTLLM_OCI_CACHE or ~/.cache/trtllm-oci/engines)")
    p.add_argument("--oci-auth", choices=["api_key", "instance_principal", "resource_principal", "security_token"],
                   default="api_key", help="OCI auth for an oci:// engine cache")
    p.add_argument("--oci-profile", default="DEFAULT", help="~/.oci/config profile for an oci:// engine cache")
    p.add_argument("--force", action="store_true", help="build even when the planner says it will not fit")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_build)


def _spec(args: argparse.Namespace):
    from trtllm_oci.spec import ModelSource, parse_spec

    source = ModelSource.parse(args.model, args.revision)
    target = {"kind": "local", "gpu_shape": args.shape} if args.shape else {"kind": "local"}
    return parse_spec(
        {
            "model": source.model_dump(mode="json", exclude_none=True),
            "quantization": {"method": args.quant, "kv_cache_dtype": args.kv_cache_dtype, "dtype": args.dtype,
                             **({"calib_dataset": {"local_dir": args.calib_dataset}} if args.calib_dataset else {})},
            "parallelism": {"tp": args.tp, "pp": args.pp},
            "build": {"max_batch_size": args.max_batch_size, "max_input_len": args.max_input_len,
                      "max_seq_len": args.max_seq_len, "max_num_tokens": args.max_num_tokens},
            "trtllm_version": args.trtllm_version,
            "target": target,
            **({"engine_cache": {"uri": args.engine_cache, "auth": args.oci_auth, "profile": args.oci_profile}}
               if args.engine_cache else {}),
        },
        source="command line",
    )


def _model_commit(spec, dry_run: bool) -> tuple[str, str]:
    """(commit sha, how it was obtained)."""
    import hashlib
    from pathlib import Path

    from trtllm_oci.engine.download import LocalModelError, resolve_revision, use_local_model

    if spec.model.local_dir is not None:
        try:
            return use_local_model(Path(spec.model.local_dir)).commit_sha, "local directory content"
        except LocalModelError:
            if not dry_run:
                raise
            config = Path(spec.model.local_dir)
            config = config / "config.json" if config.is_dir() else config
            return "local-config-" + hashlib.sha256(config.read_bytes()).hexdigest(), "config.json only (dry run)"
    if re.fullmatch(r"[0-9a-f]{40}", spec.model.revision):
        return spec.model.revision, "commit sha given"
    return resolve_revision(spec.model.hf_repo, spec.model.revision), f"resolved {spec.model.revision} on the Hub"


def run_build(args: argparse.Namespace) -> int:
    from trtllm_oci.engine import pipeline
    from trtllm_oci.engine.cache import cache_key
    from trtllm_oci.engine.versions import get_version
    from trtllm_oci.errors import TrtllmOciError
    from trtllm_oci.model_source import model_facts_for

    spec = _spec(args)
    if not args.dry_run:
        return _run_real_build(args, spec)
    facts = model_facts_for(spec.model)
    version = get_version(spec.trtllm_version)
    steps = pipeline.plan_steps(spec, facts.family, args.workers, checkpoint_dtype=facts.torch_dtype)
    dtype = pipeline.engine_dtype(spec, facts.torch_dtype)

    gpu_arch = args.gpu_arch or (spec.shape.gpu.arch if spec.shape else None) or pipeline.detect_gpu_arch()
    if gpu_arch is not None:
        from trtllm_oci.engine.precision import check_precision_on_gpu, parse_gpu_arch

        check_precision_on_gpu(dtype, fp8_weights=spec.quantization.method.needs_fp8_hardware,
                               kv_cache_dtype=spec.quantization.kv_cache_dtype.value,
                               compute_capability=parse_gpu_arch(gpu_arch),
                               gpu_label=spec.shape.gpu.name if spec.shape and not args.gpu_arch else gpu_arch)
    digest, basis = args.image_digest, "image digest"
    if digest is None:
        try:
            digest = pipeline.resolve_image_digest(version.serving_image, None, pull=False)
        except TrtllmOciError:
            digest, basis = None, "image tag (digest unresolved: no Docker engine holds the image)"
    commit, commit_basis = _model_commit(spec, dry_run=True)
    key = None
    if gpu_arch is not None:
        key = cache_key(pipeline.cache_inputs(spec, commit, steps, digest or pipeline.unresolved_digest(version.serving_image), gpu_arch))
    out = {
        "cache_key": key,
        "cache_key_basis": basis if key else "not computed: pass --shape or --gpu-arch (no GPU on this machine)",
        "model_commit": commit,
        "model_commit_basis": commit_basis,
        "gpu_arch": gpu_arch,
        "image": version.serving_image,
        "image_digest": digest,
        "trtllm_version": spec.trtllm_version,
        "dtype": dtype,
        "dtype_basis": "given" if spec.quantization.dtype != "auto" else f"auto from the checkpoint's torch_dtype "
                                                                          f"{facts.torch_dtype}",
        "steps": [{"name": s.name, "argv": list(s.argv)} for s in steps],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"image {out['image']}  cache key {key} ({out['cache_key_basis']})")
        import shlex

        for s in out["steps"]:
            print(f"[{s['name']}] {shlex.join(s['argv'])}")
    return 0


def _run_real_build(args: argparse.Namespace, spec) -> int:
    from pathlib import Path

    from trtllm_oci import planner
    from trtllm_oci.engine.cache import default_cache_root
    from trtllm_oci.engine.download import download_model, tty_progress_printer, use_local_model
    from trtllm_oci.engine.pipeline import BuildHost, build_trtllm_engine, refuse_if_it_will_not_fit
    from trtllm_oci.engine.stores import open_engine_store
    from trtllm_oci.model_facts import load_model_facts

    if spec.model.local_dir is not None:
        model = use_local_model(Path(spec.model.local_dir))
    else:
        model = download_model(spec.model.hf_repo, spec.model.revision, default_cache_root().parent / "models",
                               progress=tty_progress_printer())
    facts = load_model_facts(Path(model.local_dir))
    plan = None
    if spec.shape is not None:
        plan = planner.plan(facts, spec.shape, spec.quantization, spec.parallelism, spec.build)
        alternatives = None if plan.fits else planner.alternatives_text(facts, spec.shape, spec.build)
        refuse_if_it_will_not_fit(plan, alternatives, args.force)
    host = BuildHost(runner=args.runner, trtllm_src_dir=args.trtllm_src, gpu_arch=args.gpu_arch,
                     image_digest=args.image_digest, workers=args.workers, hf_home=args.hf_home)
    store = open_engine_store(spec.engine_cache)
    manifest, hit = build_trtllm_engine(spec, model, facts.family, store, host, lambda line: print(line, file=sys.stderr))
    if args.json:
        print(manifest.model_dump_json(indent=2))
    else:
        print(f"{'cache hit' if hit else 'built'}: {manifest.key} at {manifest.uri}")
    return 0
