"""Dependencies as typed aliases, so handlers read like signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.components import Components
from app.settings import Settings


def get_components(request: Request) -> Components:
    """The components opened at start-up."""
    components: Components = request.app.state.components
    return components


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


ComponentsDep = Annotated[Components, Depends(get_components)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
