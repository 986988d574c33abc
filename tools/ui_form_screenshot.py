"""Screenshot the `release` deployment's Run page the way a user sees it: a local `prefect server start`, the
deployment applied to it, and Debian's headless Chromium.

    python tools/ui_form_screenshot.py --out out/ui [--ui v1|v2] [--height 5000] [--spec RELEASE.yaml]

Writes <out>/release-run-<ui>.png and <out>/release-parameter-schema.json (the schema the server holds, which
the form is built from). Needs `chromium` on PATH (apt-get install chromium). Starts and stops everything
itself, under a temporary PREFECT_HOME; nothing reaches the network. tests/flows/test_ui_form_schema.py
asserts on the schema what can be asserted; this script is for looking at the picture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(api: str, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=3) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"prefect server at {api} was not healthy after {timeout_s:.0f} s")


_APPLY = """
import json, sys
from trtllm_oci.flows.release import release
from trtllm_oci.spec import load_spec
parameters = {"spec": load_spec(sys.argv[1]).model_dump(mode="json", exclude_none=True)} if len(sys.argv) > 1 else {}
deployment_id = release.to_deployment(name="ui-form", parameters=parameters).apply()
print(json.dumps({"id": str(deployment_id)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/ui"))
    parser.add_argument("--ui", choices=["v1", "v2"], default="v2", help="which Prefect UI to render (default v2)")
    parser.add_argument("--height", type=int, default=5000, help="window height in pixels (default 5000)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--wait-ms", type=int, default=20000, help="virtual time Chromium gives the page")
    parser.add_argument("--spec", type=Path, help="a release spec YAML as the deployment's default parameters "
                        "(e.g. examples/release-oci-llama2-13b.yaml, to see the OCI target's fields opened)")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not on PATH; apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ui-form-") as scratch:
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": str(Path(scratch) / "prefect-home"), "PREFECT_API_URL": api,
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-services"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_healthy(api)
            applied = subprocess.run([sys.executable, "-c", _APPLY, *([str(args.spec)] if args.spec else [])],
                                     env=env, capture_output=True, text=True)
            if applied.returncode != 0:
                raise SystemExit(f"applying the deployment failed:\n{applied.stderr}")
            deployment_id = json.loads(applied.stdout.strip().splitlines()[-1])["id"]
            with urllib.request.urlopen(f"{api}/deployments/{deployment_id}", timeout=30) as response:
                schema = json.load(response)["parameter_openapi_schema"]
            (args.out / "release-parameter-schema.json").write_text(json.dumps(schema, indent=2))
            # v1 is served under /, v2 under /v2/ (prefect/server/api/server.py _resolve_ui_base_urls); neutral
            # entry points redirect to v2 in Prefect 3.8 (server.ui.v2_enabled defaults to true).
            prefix = "/v2" if args.ui == "v2" else ""
            url = f"http://127.0.0.1:{port}{prefix}/deployments/deployment/{deployment_id}/run"
            png = args.out / f"release-run-{args.ui}{'-' + args.spec.stem if args.spec else ''}.png"
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={Path(scratch) / 'chromium'}",
                            f"--window-size={args.width},{args.height}", f"--virtual-time-budget={args.wait_ms}",
                            f"--screenshot={png.resolve()}", url],
                           check=True, capture_output=True, timeout=300)
            print(f"wrote {png} and {args.out / 'release-parameter-schema.json'} ({url})")
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
