"""Schemathesis generates requests from the OpenAPI schema, valid and invalid, and the app answers none with a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from mtst.inference.predictor import Predictor
from mtst.serve.app import create_app
from mtst.serve.config import ServeConfig
from mtst.serve.loading import describe_checkpoint


@pytest.fixture(scope="module")
def api_schema(tiny_checkpoint):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    config = ServeConfig(max_texts=8, max_chars=300, max_body_bytes=16_384, max_wait_ms=0)
    app = create_app(predictor.predict, describe_checkpoint(tiny_checkpoint), config)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# schemathesis.pytest.from_fixture fails under pytest 9 (no Function._nodeid), hence a plain @given.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_request_from_the_schema_gets_a_server_error(api_schema, mode):
    @given(case=api_schema.as_strategy(mode))
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate()  # every default check: no 5xx, responses match the schema, bad input refused

    check()
