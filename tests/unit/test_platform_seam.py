"""The platform seam's two sides define the same public names with the same signatures."""

from __future__ import annotations

import inspect

from watchd.platform import darwin, linux


def public(module: object) -> dict[str, str]:
    return {
        name: str(inspect.signature(value)) if callable(value) else type(value).__name__
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", module.__name__) == module.__name__  # type: ignore[attr-defined]
    }


def test_both_sides_define_the_same_names_and_signatures() -> None:
    assert public(linux) == public(darwin)
