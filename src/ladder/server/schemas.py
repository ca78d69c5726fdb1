"""Request bodies of the OpenAI-compatible endpoints (pydantic; unknown OpenAI fields are ignored)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ladder.ids import id_pattern
from ladder.models.text_stops import MAX_STOP_CHARS, MAX_STOPS

MAX_TEXT = 1_000_000  # characters in one message or one embedding input
# Bot versions are SQLite INTEGERs; far more than any bot will have, far less than SQLite's 2**63 - 1.
MAX_VERSION = 2**31 - 1
# Seeds within what a JSON number (an IEEE double) holds exactly: the spec's bounds reach clients as
# doubles, and 2**63 - 1 would arrive as 2**63.
SEED_BOUND = 2**53
FILE_ID = id_pattern("file")


def _json_integer(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(**bounds: int) -> type:
    """JSON Schema's integer within `bounds` (ge, le, gt, lt), checked strictly: 3 and 3.0 are integers;
    true, "3" and 3.5 are not. The bounds sit inside the type so that the spec shows them."""
    return Annotated[int, Field(**bounds), BeforeValidator(_json_integer)]


class StrictBody(BaseModel):
    """A request body validated as its JSON Schema says: no `false` taken for 0, no "1" for 1."""

    model_config = ConfigDict(strict=True)


class _Open(StrictBody):
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
    max_tokens: json_int(ge=1) | None = Field(None, description="at most this server's cap")
    max_completion_tokens: json_int(ge=1) | None = Field(None, description="at most this server's cap")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: json_int(ge=-SEED_BOUND, le=SEED_BOUND) | None = Field(None)
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOPS)] | None = Field(
        None, description="one stop sequence, or a list of them"
    )
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    n: json_int(ge=1, le=1) | None = Field(None, description="only one choice per request is supported")
    tools: list[dict] | None = Field(None, max_length=0, description="tools are not supported")
    user: str | None = Field(None, max_length=512)


class EmbeddingRequest(_Open):
    model: str = Field(..., min_length=1, max_length=512)
    input: str | list[str] = Field(...)
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: json_int(ge=1) | None = Field(None)
    user: str | None = Field(None, max_length=512)


class FineTuningMethodSupervised(_Open):
    hyperparameters: dict | None = None


class FineTuningMethod(_Open):
    type: Literal["supervised"] = Field("supervised", description="only supervised fine-tuning is supported")
    supervised: FineTuningMethodSupervised | None = None


class FineTuningJobRequest(_Open):
    training_file: str = Field(..., pattern=FILE_ID, description="a file id from POST /v1/files")
    validation_file: str | None = Field(None, pattern=FILE_ID, description="a file id from POST /v1/files")
    model: str = Field(..., min_length=1, max_length=512)
    suffix: str | None = Field(None, max_length=64)
    seed: json_int(ge=0, lt=2**31) | None = Field(None)
    hyperparameters: dict | None = None
    method: FineTuningMethod | None = None
    integrations: list[dict] | None = None
    metadata: dict | None = None


def document_token_cap(app, cap: int) -> None:
    """Make the app's OpenAPI schema say this server's max_tokens cap (configuration, so not in the models)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            models = generate().get("components", {}).get("schemas", {})
            for model, names in _CAPPED.items():
                for name in names:
                    prop = models.get(model, {}).get("properties", {}).get(name)
                    for schema in prop.get("anyOf", [prop]) if prop else []:
                        if schema.get("type") == "integer":
                            schema["maximum"] = min(cap, schema.get("maximum", cap))
        return app.openapi_schema

    app.openapi = openapi


# The request fields that ask for a number of generated tokens, by schema name.
_CAPPED = {
    "ChatCompletionRequest": ("max_tokens", "max_completion_tokens"),
    "BotSettings": ("max_tokens",),
    "BotChanges": ("max_tokens",),
}
