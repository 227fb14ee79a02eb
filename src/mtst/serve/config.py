"""The one settings object of the server: where it listens, what it accepts, how it batches."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mtst.inference.backends import Backend


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Loopback: exposing the model to a network is an explicit choice.
    host: str = Field("127.0.0.1", description="interface to listen on; 0.0.0.0 opens it to the network")
    port: int = Field(8000, ge=0, le=65535)
    backend: Backend = Field("torch", description="inference backend")
    max_texts: int = Field(64, ge=1, description="texts per request")
    max_chars: int = Field(10_000, ge=1, description="characters per text")
    # Room for max_texts x max_chars of ordinary text; JSON escapes (\uXXXX) and 4-byte UTF-8 can exceed it.
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1, description="request body size")
    # The work a request may ask for, counted in the encoder's sub-tokens (a character limit alone lets
    # 64 texts of 10,000 characters through: ~44 s of one CPU core). Refused with 413.
    max_subtokens: int = Field(16_384, ge=1, description="sub-tokens per request, summed over its texts")
    # Requests waiting for a batch; one more is refused with 503 and Retry-After instead of waiting unbounded.
    max_queued_requests: int = Field(64, ge=1, description="requests waiting for the model before 503")
    max_batch_sentences: int = Field(
        64, ge=1, description="sentences per model call, summed over requests; 1 turns micro-batching off"
    )
    # Bounded: with `inf` every request would wait for a full batch.
    max_wait_ms: float = Field(
        5.0, ge=0, le=60_000, description="how long a batch waits for more requests once one arrived"
    )
    # Rasa's `--auth-token`: POST /model/parse then needs `?token=` (or `token` in the body, as Rasa sends it).
    rasa_token: str | None = Field(None, description="token POST /model/parse requires (Rasa's auth token)")
