"""One server for the web UI (at ``/``) and the HTTP API (at ``/api/v1``), behind
:class:`a2v.serve.security.Guard`."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

from a2v.serve.config import ServeConfig


def build_app(models_dir: Path | None = None, cfg: ServeConfig | None = None, host: str = "127.0.0.1") -> Any:
    """ASGI app: the FastAPI routes and the Gradio UI mounted at ``/``, wrapped in the Guard
    middleware. ``app.state`` (of the inner FastAPI app, also reachable as ``.fastapi``) holds
    ``workspace`` (the scratch folder, removed on shutdown) and ``queue`` (the API job queue)."""
    from a2v.serve import jobs

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never phone home
    # Gradio's upload/cache folder: under the servers' shared scratch folder (set before Blocks exist)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(jobs.default_base() / "gradio"))
    import gradio as gr
    from fastapi import FastAPI
    from gradio.utils import get_upload_folder

    from a2v.serve import api, ui
    from a2v.serve.runner import JobQueue
    from a2v.serve.security import Guard, allowed_host_names

    cfg = cfg or ServeConfig()
    ws = jobs.Workspace(cfg.keep_results_s, cfg.concurrency)
    queue = JobQueue(ws.slots, cfg.concurrency, cfg.queue_size, cfg.job_timeout_s)
    app = FastAPI(title="a2v", on_shutdown=[queue.close, ws.close])
    app.state.workspace = ws
    app.state.queue = queue
    api.add_routes(app, ws, queue, cfg, models_dir)
    blocks = ui.build_ui(ws, queue, cfg, models_dir)
    system_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web-font downloads (offline use)
    theme = gr.themes.Default(font=system_fonts, font_mono=["ui-monospace", "monospace"])
    gr.mount_gradio_app(
        app, blocks, path="/", max_file_size=f"{cfg.max_upload_mb:g}mb", ssr_mode=False, theme=theme,
        footer_links=["api"], show_error=False, run_history=False,
    )
    # Gradio checks that an input file was uploaded by a user only once the Blocks count as launched;
    # launch() sets this, mounting does not (without it a request could name any server path).
    blocks.has_launched = True
    upload_dir = Path(get_upload_folder())
    upload_dir.mkdir(parents=True, exist_ok=True)
    guard = Guard(app, hosts=allowed_host_names(host, cfg.allowed_hosts), auth=cfg.auth,
                  max_body_bytes=int(2 * cfg.max_upload_mb * 1e6 + 1e6), upload_dir=upload_dir)
    guard.state = app.state
    guard.fastapi = app
    return guard


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_warning(host: str, auth: str) -> str | None:
    """The warning printed when the server listens beyond this machine without authentication."""
    if is_loopback(host) or auth:
        return None
    return f"a2v: WARNING: listening on {host} without --auth: anyone who can reach this address can run jobs"


def serve(host: str = "127.0.0.1", port: int = 7860, models_dir: Path | None = None, cfg: ServeConfig | None = None) -> None:
    """Run the server until interrupted (``a2v serve``)."""
    import uvicorn

    cfg = cfg or ServeConfig()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    warning = bind_warning(host, cfg.auth)
    if warning:
        print(warning, file=sys.stderr)
    if host in ("0.0.0.0", "::") and not cfg.allowed_hosts:  # noqa: S104
        print("a2v: only requests to localhost are answered: give the name clients use with --allowed-host",
              file=sys.stderr)
    app = build_app(models_dir, cfg, host=host)
    print(f"a2v: web UI at http://{host}:{port}/  API at http://{host}:{port}/api/v1/ (docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False,
                limit_concurrency=max(64, 4 * cfg.queue_size))
