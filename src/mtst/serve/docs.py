"""`/docs` from Swagger UI files shipped in a Python package, so the page works without the internet.

FastAPI's own `/docs` loads Swagger UI from a CDN and is blank offline. Here the same page
(`get_swagger_ui_html`) points at the files of the `swagger-ui-bundle-v2` package (Swagger UI 5, which reads
the OpenAPI 3.1 schema FastAPI writes), served under `/docs-assets`. Without that package `/docs` is off and
the server logs one line saying why; `/openapi.json` is served either way. ReDoc (CDN only) is off.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)
ASSETS = "/docs-assets"


def add_offline_docs(app: FastAPI) -> bool:
    """Adds `/docs` served from local files; returns False (and logs why) when the assets are not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        logger.warning("/docs is off: its Swagger UI files come from swagger-ui-bundle-v2 (pip install 'mtst[serve]')")
        return False
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    return True
