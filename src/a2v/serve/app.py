"""One server for the web UI (at ``/``) and the HTTP API (at ``/api/v1``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from a2v.serve.config import ServeConfig


def build_app(models_dir: Path | None = None, cfg: ServeConfig | None = None) -> Any:
    """FastAPI app with the API routes and the Gradio UI mounted at ``/``; ``app.state.workspace``
    holds the scratch folder (removed on shutdown)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never phone home
    import gradio as gr
    from fastapi import FastAPI

    from a2v.serve import api, jobs, ui

    cfg = cfg or ServeConfig()
    ws = jobs.Workspace(cfg.keep_results_s, cfg.concurrency)
    app = FastAPI(title="a2v", on_shutdown=[ws.close])
    app.state.workspace = ws
    api.add_routes(app, ws, cfg, models_dir)
    blocks = ui.build_ui(ws, cfg, models_dir)
    system_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web-font downloads (offline use)
    theme = gr.themes.Default(font=system_fonts, font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(
        app, blocks, path="/", max_file_size=f"{cfg.max_upload_mb:.0f}mb", allowed_paths=[str(ws.root)],
        ssr_mode=False, theme=theme, footer_links=["api"], show_error=True,
    )


def serve(host: str = "127.0.0.1", port: int = 7860, models_dir: Path | None = None, cfg: ServeConfig | None = None) -> None:
    """Run the server until interrupted (``a2v serve``)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = build_app(models_dir, cfg)
    print(f"a2v: web UI at http://{host}:{port}/  API at http://{host}:{port}/api/v1/ (docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")
