"""`docchat config show`: every effective setting, masked if secret, with its origin."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    SecretsSettingsSource,
)

from app.security.secrets import masked_url
from app.settings import ENV_PREFIX, Settings, settings_files

MASK = "**********"
# Plain strings that are secrets all the same: shown as scheme and host only.
SECRET_URL_LISTS = frozenset({"alerts.webhooks"})


def _has(tree: dict[str, Any], path: list[str]) -> bool:
    node: Any = tree
    for part in path:
        if not isinstance(node, dict):
            return False
        lowered = {str(k).lower(): v for k, v in node.items()}
        if part not in lowered:
            return False
        node = lowered[part]
    return True


def _leaves(model: BaseModel, prefix: list[str]) -> list[tuple[list[str], Any]]:
    out: list[tuple[list[str], Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out += _leaves(value, [*prefix, name])
        else:
            out.append(([*prefix, name], value))
    return out


def settings_report(settings: Settings) -> list[dict[str, Any]]:
    """Rows of name, value (secrets masked) and source, in declaration order."""
    env_file, secrets_dir = settings_files()
    sources = [
        (f"environment ({ENV_PREFIX}…)", EnvSettingsSource(Settings)()),
        (f"{env_file} file", DotEnvSettingsSource(Settings, env_file=env_file)()),
        (
            f"secrets dir {secrets_dir}",
            NestedSecretsSettingsSource(SecretsSettingsSource(Settings, secrets_dir=secrets_dir))(),
        ),
    ]
    rows = []
    for path, value in _leaves(settings, []):
        origin = next((label for label, tree in sources if _has(tree, path)), "default")
        if isinstance(value, SecretStr):
            shown: Any = MASK if value.get_secret_value() else "(empty)"
        elif ".".join(path) in SECRET_URL_LISTS:
            shown = str([masked_url(url) for url in value])
        elif value is None:
            shown = None
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            shown = json.dumps([item.model_dump(mode="json") for item in value])
        else:
            shown = value if isinstance(value, int | float | bool) else str(value)
        rows.append(
            {
                "name": ".".join(path),
                "value": shown,
                "source": origin,
                "env": ENV_PREFIX + "__".join(path).upper(),
            }
        )
    return rows


def _default(field: Any) -> str:
    """A field's default as the reference shows it."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "empty"
    if isinstance(value, list | bool):
        plain = (
            [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            if isinstance(value, list)
            else value
        )
        return "`" + json.dumps(plain) + "`"
    return f"`{value}`"


def settings_reference() -> str:
    """Every setting with its default and description, as Markdown tables: the end of
    docs/configuration.md (`docchat config reference` prints it; a test keeps the docs
    in step)."""
    lines = ["### top level", "", "| setting | default | what it does |", "| --- | --- | --- |"]
    sections: list[tuple[str, type[BaseModel]]] = []
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            sections.append((name, kind))
            continue
        lines.append(f"| `{name}` | {_default(field)} | {field.description or ''} |")
    for section, model in sections:
        lines += ["", f"### {section}", "", (model.__doc__ or "").strip(), ""]
        lines += ["| setting | default | what it does |", "| --- | --- | --- |"]
        for name, field in model.model_fields.items():
            row = f"| `{section}.{name}` | {_default(field)} | {field.description or ''} |"
            lines.append(row)
    return "\n".join(lines) + "\n"


def settings_hashes(settings: Settings) -> dict[str, str]:
    """A digest of each non-secret setting's value, by name: what the audit trail
    compares from one start to the next. Secrets (and the webhook URLs) are left out
    entirely, so not even a digest of them is written."""
    from app.store.audit import value_hash

    hashes = {}
    secret = _secret_fields(type(settings), []) | SECRET_URL_LISTS
    for path, value in _leaves(settings, []):
        name = ".".join(path)
        if isinstance(value, SecretStr) or name in secret:
            continue
        if isinstance(value, list):
            value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        hashes[name] = value_hash(value)
    return hashes


def _secret_fields(model: type[BaseModel], prefix: list[str]) -> set[str]:
    """Names of the fields declared as secrets (SecretStr, set or not)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= _secret_fields(kind, [*prefix, name])
        elif "SecretStr" in str(kind):
            names.add(".".join([*prefix, name]))
    return names
