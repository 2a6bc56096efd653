"""Web UI (Gradio, a tab per recipe) and HTTP API (FastAPI) behind ``a2v serve``.

- :mod:`a2v.serve.config`: limits (upload size, seconds, pixels, queue, timeout) and trust settings.
- :mod:`a2v.serve.limits`: validation of every request field and file, shared by the UI and the API.
- :mod:`a2v.serve.jobs`: the scratch workspace, input staging and the recipe calls.
- :mod:`a2v.serve.runner`: the bounded FIFO job queue; jobs run in child processes.
- :mod:`a2v.serve.security`: the middleware (Host, auth, cross-origin, body limit, file route).
- :mod:`a2v.serve.ui`: the Gradio app.
- :mod:`a2v.serve.api`: the HTTP API routes.
- :mod:`a2v.serve.app`: all of it on one server; :func:`a2v.serve.app.serve` runs it.
"""
