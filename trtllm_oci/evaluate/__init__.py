"""The quality gate: a quantized release answers as well as its source, measured by a kept harness.

lm-evaluation-harness (`lm-eval`, the `eval` extra) runs a task set of lm-eval task YAMLs against an
OpenAI-compatible `/v1/completions` endpoint (its `local-completions` model); `harness` runs it in a child
process whose working directory is the task set, offline. `gate` compares the candidate's scores with the
source's under a drop limit per metric; `baseline` keeps the source's scores keyed by source commit, task set
and harness version; `endpoint` checks that a server returns what log-likelihood tasks read. No Prefect here,
no release spec: the release layer (`trtllm_oci/release/evaluate.py`) passes typed requests.
"""
