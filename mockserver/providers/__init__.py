"""Provider families: each translates HTTP into the neutral core and back into its own words."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mockserver.providers.base import Family

# family -> "module:Class"; imported lazily because the routes pull in Starlette.
REGISTRY = {
    "dashscope": "mockserver.providers.dashscope.routes:DashScope",
    "newapi": "mockserver.providers.newapi.routes:NewApi",
    "jiekou": "mockserver.providers.jiekou.routes:Jiekou",
    "apiyi": "mockserver.providers.apiyi.routes:Apiyi",
}


def family_class(name: str) -> type[Family]:
    """The `Family` subclass serving `name`."""
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
