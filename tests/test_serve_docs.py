"""`/docs` works offline: every script, style sheet and icon it names is served by the app itself."""

import re

import pytest
from fastapi.testclient import TestClient

from mtst.serve.app import create_app


@pytest.fixture(scope="module")
def client():
    app = create_app(lambda texts: [{"text": text} for text in texts], {"version": "test"})
    with TestClient(app) as test_client:
        yield test_client


def test_docs_page_loads_swagger_ui_from_the_app_not_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(assets) >= 3 and not [url for url in assets if "://" in url or url.startswith("//")]
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200 and len(response.content) > 100, url
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")  # Swagger UI 5 reads 3.1


def test_no_cdn_page_is_left_behind(client):
    assert client.get("/redoc").status_code == 404  # ReDoc has no offline build shipped; off


def test_without_the_assets_package_docs_is_off_with_a_note(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_bundle(name, *args, **kwargs):
        if name == "swagger_ui_bundle":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bundle)
    app = create_app(lambda texts: [], {"version": "test"})
    with TestClient(app) as bare:
        assert bare.get("/docs").status_code == 404 and bare.get("/openapi.json").status_code == 200
    assert "/docs is off" in caplog.text
