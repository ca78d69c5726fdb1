"""Request bodies of the OpenAI-compatible endpoints (pydantic; unknown OpenAI fields are ignored)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ladder.models.text_stops import MAX_STOP_CHARS, MAX_STOPS

MAX_TEXT = 1_000_000  # characters in one message or one embedding input
# Bot versions are SQLite INTEGERs; far more than any bot will have, far less than SQLite's 2**63 - 1.
MAX_VERSION = 2**31 - 1


class _Open(BaseModel):
    # strict: a JSON `false` is not the integer 0, nor "1" the number 1, as the spec says.
    model_config = ConfigDict(extra="ignore", strict=True)


class ContentPart(_Open):
    type: Literal["text"] = Field(..., description="only text parts are supported")
    text: str | None = Field(None, max_length=MAX_TEXT)


StopSequence = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]


class ChatMessageIn(_Open):
    # "developer" is OpenAI's newer name for "system"
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[ContentPart] | None = Field(None)
    name: str | None = Field(None, max_length=256)


class JsonSchemaSpec(_Open):
    name: str = Field("response", max_length=256)
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class ChatCompletionRequest(_Open):
    model: str = Field(..., min_length=1, max_length=512)
    messages: list[ChatMessageIn] = Field(..., min_length=1, max_length=2048)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOPS)] | None = Field(
        None, description="one stop sequence, or a list of them"
    )
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    n: int | None = Field(None, ge=1, le=1, description="only one choice per request is supported")
    tools: list[dict] | None = Field(None, max_length=0, description="tools are not supported")
    user: str | None = Field(None, max_length=512)


class EmbeddingRequest(_Open):
    model: str = Field(..., min_length=1, max_length=512)
    input: str | list[str] = Field(...)
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=512)


class FineTuningMethodSupervised(_Open):
    hyperparameters: dict | None = None


class FineTuningMethod(_Open):
    type: Literal["supervised", "dpo", "reinforcement"] = "supervised"
    supervised: FineTuningMethodSupervised | None = None


class FineTuningJobRequest(_Open):
    training_file: str = Field(..., min_length=1, max_length=256)
    validation_file: str | None = Field(None, max_length=256)
    model: str = Field(..., min_length=1, max_length=512)
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, lt=2**31)
    hyperparameters: dict | None = None
    method: FineTuningMethod | None = None
    integrations: list[dict] | None = None
    metadata: dict | None = None
