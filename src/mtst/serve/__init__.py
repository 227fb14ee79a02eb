"""`mtst serve`: an HTTP service and a page over one checkpoint, with micro-batched inference.

`serve.app` (FastAPI) and `serve.loading` need the `serve` extra; `serve.config` needs only pydantic.
"""
