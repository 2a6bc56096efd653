"""Web UI (Gradio, a tab per recipe) and HTTP API (FastAPI) behind ``a2v serve``.

- :mod:`a2v.serve.config`: limits (upload size and types, concurrency, queue length).
- :mod:`a2v.serve.jobs`: input checks and the recipe calls, shared by the UI and the API.
- :mod:`a2v.serve.ui`: the Gradio app.
- :mod:`a2v.serve.api`: the HTTP API routes.
- :mod:`a2v.serve.app`: both on one FastAPI server; :func:`a2v.serve.app.serve` runs it.
"""
