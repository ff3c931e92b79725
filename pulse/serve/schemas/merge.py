"""A partial update (PATCH or PUT of some fields) merged into what is stored is checked as a whole body.

The service does the merge; the route hands it `validated` with the area's create model, so a
merged document that breaks a cross-field rule fails with the 422 the whole body would get.
"""
from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], document: dict[str, Any]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
