"""The `--project NAME` option of CLI commands, resolved to a project id the way the server resolves keys."""

from __future__ import annotations

from typing import Annotated

import typer

from ladder.errors import NotFound
from ladder.store.db import DEFAULT_PROJECT

ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="Project name (or id) to act in; default: the default project."),
]


def project_id(name: str | None) -> str:
    """The id of project `name` (None: the default project); NotFound naming the known projects."""
    if name is None:
        return DEFAULT_PROJECT
    from ladder.server import keys

    try:
        return keys.project_by_name(name)
    except NotFound:
        known = ", ".join(p["name"] for p in keys.list_projects()) or "none"
        raise NotFound(
            f"no project named {name!r} (projects: {known}); a project is created with its first key: "
            f"`ladder keys create --project {name}`",
            param="project",
        ) from None
