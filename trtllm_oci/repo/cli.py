"""`trtllm-oci repo assemble`: argparse registration and handler (wired into the trtllm-oci CLI)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from trtllm_oci.repo.layout import oci_deploy_root


def _table_default_version() -> str | None:
    """default_version of trtllm_oci/data/trtllm_versions.yaml (the version table of the build stage)."""
    from trtllm_oci.yaml_input import load_table

    table = resources.files("trtllm_oci.data").joinpath("trtllm_versions.yaml")
    if not table.is_file():
        return None
    return load_table(table.read_text()).get("default_version")


def add_repo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    repo = subparsers.add_parser(
        "repo",
        help="Triton inflight_batcher_llm model repository",
        description="Build and check the Triton model repository that serves TensorRT-LLM engines.",
    )
    repo_sub = repo.add_subparsers(dest="repo_command", required=True)
    assemble = repo_sub.add_parser(
        "assemble",
        help="write ensemble/preprocessing/postprocessing/tensorrt_llm configs, link engine and tokenizer",
        description=(
            "Assemble <out>/model_repository (serve it with --model-repository=<deploy root>/model_repository), "
            "<out>/engine (links to the engine files) and <out>/tokenizer. Every config.pbtxt is generated for "
            "the given TRT-LLM version's backend interface. Before writing, the engine dir's config.json and "
            "rank files are checked (tp×pp, TRT-LLM version, max_batch_size); no GPU is needed. The output is "
            "written atomically: on error nothing is left at --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    assemble.add_argument(
        "--engine-dir",
        type=Path,
        help="trtllm-build --output_dir (config.json + rank*.engine); required for --backend tensorrtllm",
    )
    assemble.add_argument(
        "--tokenizer-dir",
        type=Path,
        required=True,
        help="Hugging Face model dir with tokenizer.json / tokenizer.model",
    )
    assemble.add_argument(
        "--out",
        type=Path,
        required=True,
        help="repository root to create (must not exist unless --overwrite)",
    )
    default_version = _table_default_version()
    assemble.add_argument(
        "--trtllm-version",
        default=default_version,
        required=default_version is None,
        help="TRT-LLM version of the serving image (trtllm_oci/data/trtllm_versions.yaml); must equal the "
        "engine's build version",
    )
    assemble.add_argument(
        "--backend",
        choices=["tensorrtllm", "reference"],
        default="tensorrtllm",
        help="tensorrtllm: the C++ TRT-LLM backend (GPU); reference: the CPU reference Python "
        "model on --hf-model-dir, for tests without a GPU",
    )
    assemble.add_argument("--hf-model-dir", type=Path, help="HF model dir loaded by --backend reference")
    assemble.add_argument(
        "--streaming",
        action="store_true",
        help="decoupled tensorrt_llm (and BLS) for /generate_stream; plain /generate then fails",
    )
    assemble.add_argument(
        "--max-batch-size",
        dest="triton_max_batch_size",
        type=int,
        help="Triton max_batch_size; at most the engine's build max_batch_size (default 64)",
    )
    assemble.add_argument(
        "--batch-scheduler-policy",
        choices=["guaranteed_no_evict", "max_utilization"],
        default="guaranteed_no_evict",
    )
    assemble.add_argument(
        "--kv-cache-free-gpu-mem-fraction",
        type=float,
        default=0.9,
        help="share of GPU memory free after loading the engine that the KV cache may take",
    )
    assemble.add_argument(
        "--max-tokens-in-paged-kv-cache",
        type=int,
        help="cap on KV cache tokens; the smaller of this and the fraction wins",
    )
    assemble.add_argument(
        "--enable-kv-cache-reuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="KV cache block reuse across requests; default: the backend's own default for the version "
        "(false up to 0.18, true from 0.19)",
    )
    assemble.add_argument(
        "--include-input-in-output",
        action="store_true",
        help="echo the prompt in text_output (sets exclude_input_in_output=false)",
    )
    assemble.add_argument("--max-queue-delay-microseconds", type=int, default=0)
    assemble.add_argument("--preprocessing-instances", type=int, default=1)
    assemble.add_argument("--postprocessing-instances", type=int, default=1)
    assemble.add_argument(
        "--batching",
        choices=["inflight_fused_batching", "V1"],
        default="inflight_fused_batching",
        help="gpt_model_type; V1 is static batching, served up to TRT-LLM 0.19 (refused for 1.x)",
    )
    assemble.add_argument("--bls", action="store_true", help="also write the tensorrt_llm_bls model")
    assemble.add_argument("--bls-instances", type=int, default=1)
    assemble.add_argument(
        "--deploy-root",
        help=f"absolute path where the repository root will live when served; default: --out. "
        f"For OCI Model Deployment use {oci_deploy_root('<name>')} (see --oci-name)",
    )
    assemble.add_argument("--oci-name", help=f"shorthand for --deploy-root {oci_deploy_root('<name>')}")
    assemble.add_argument(
        "--materialize", action="store_true", help="copy engine files instead of linking them"
    )
    assemble.add_argument("--overwrite", action="store_true", help="replace an existing --out atomically")
    assemble.add_argument(
        "--shape",
        help="OCI shape (gpu_shapes.yaml) that will serve the engine: refuses an engine precision its GPU "
        "lacks (bf16 below SM 8.0, fp8 below SM 8.9)",
    )
    assemble.set_defaults(handler=cmd_repo_assemble)
    return repo


def cmd_repo_assemble(args: argparse.Namespace) -> int:
    # tritonclient's protobufs (and numpy with them) load only when a repository is assembled, not for --help.
    from trtllm_oci.repo.assemble import AssembleError, RepoOptions, assemble_repository

    if args.oci_name and args.deploy_root:
        raise AssembleError("--oci-name and --deploy-root are alternatives; pass one of them")
    fields = dict(
        trtllm_version=args.trtllm_version,
        backend=args.backend,
        streaming=args.streaming,
        batch_scheduler_policy=args.batch_scheduler_policy,
        kv_cache_free_gpu_mem_fraction=args.kv_cache_free_gpu_mem_fraction,
        max_tokens_in_paged_kv_cache=args.max_tokens_in_paged_kv_cache,
        enable_kv_cache_reuse=args.enable_kv_cache_reuse,
        exclude_input_in_output=not args.include_input_in_output,
        max_queue_delay_microseconds=args.max_queue_delay_microseconds,
        preprocessing_instance_count=args.preprocessing_instances,
        postprocessing_instance_count=args.postprocessing_instances,
        bls_instance_count=args.bls_instances,
        gpt_model_type=args.batching,
        include_bls=args.bls,
        deploy_root=oci_deploy_root(args.oci_name) if args.oci_name else args.deploy_root,
        materialize=args.materialize,
    )
    if args.triton_max_batch_size is not None:
        fields["triton_max_batch_size"] = args.triton_max_batch_size
    gpu = None
    if args.shape:
        from trtllm_oci.shapes import get_shape

        shape = get_shape(args.shape)
        gpu = (shape.gpu.sm, f"{shape.name} ({shape.gpu.name}, SM {shape.gpu.compute_capability})")
    manifest = assemble_repository(
        args.engine_dir,
        args.tokenizer_dir,
        args.out,
        RepoOptions(**fields),
        args.hf_model_dir,
        overwrite=args.overwrite,
        gpu=gpu,
    )
    print(
        f"assembled {manifest.root}: models {', '.join(manifest.models)}; TRT-LLM {manifest.trtllm_version} "
        f"(interface {manifest.interface_id}); world_size {manifest.world_size}; serve with "
        f"--model-repository={manifest.model_repository_deployed}",
        file=sys.stdout,
    )
    return 0
