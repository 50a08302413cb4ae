"""Profiles and configuration helpers.

The profile switch is read in exactly one place, :func:`get_profile`. Profiles change sizes (items, users,
epochs), never code paths. Configs are frozen dataclasses; :func:`configure` varies them and rejects
unknown options with an error that lists the valid ones.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

PROFILE_ENV = "WORKBENCH_PROFILE"
PROFILES = ("smoke", "default", "paper")
DEFAULT_PROFILE = "default"

T = TypeVar("T")


def get_profile(profile: str | None = None) -> str:
    """Return the active profile: ``profile`` if given, else ``$WORKBENCH_PROFILE``, else ``"default"``.

    >>> get_profile("smoke")
    'smoke'
    """
    name = profile if profile is not None else os.environ.get(PROFILE_ENV, DEFAULT_PROFILE)
    name = name.strip().lower()
    if name not in PROFILES:
        source = "argument" if profile is not None else f"environment variable {PROFILE_ENV}"
        raise ValueError(f"unknown profile {name!r} (from {source}); expected one of {', '.join(PROFILES)}")
    return name


def configure(config: T, **changes: Any) -> T:
    """Return a copy of the frozen dataclass ``config`` with ``changes`` applied.

    Unlike a bare :func:`dataclasses.replace`, an unknown option raises a ``ValueError`` naming the option,
    the config class and the valid options.

    >>> from workbench.data.synthetic import CatalogueConfig
    >>> configure(CatalogueConfig(), n_users=50).n_users
    50
    """
    check_options(type(config), changes)
    return dataclasses.replace(config, **changes)


def check_options(cls: type, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``options`` holds a key that is not a field of dataclass ``cls``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"expected a config dataclass, got {cls!r} (configure takes a config object, e.g. "
                        "configure(CatalogueConfig(), n_users=50); the profile is chosen with get_profile or "
                        f"${PROFILE_ENV})")
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
            f"valid options: {', '.join(sorted(valid))}"
        )


def resolve_config(cls: type[T], config: T | None, options: dict[str, Any]) -> T:
    """``config`` if given, else ``cls(**options)``; unknown options, or options beside a config, are errors.

    >>> from workbench.data.synthetic import CatalogueConfig
    >>> resolve_config(CatalogueConfig, None, {"n_users": 50}).n_users
    50
    """
    check_options(cls, options)
    if config is not None and options:
        raise ValueError(f"pass either a {cls.__name__} or keyword options, not both (got {sorted(options)})")
    return config if config is not None else cls(**options)


def preset(presets: dict[str, T], profile: str | None = None, **changes: Any) -> T:
    """Pick the preset for the active profile from ``presets`` and apply ``changes``."""
    return configure(presets[get_profile(profile)], **changes)
