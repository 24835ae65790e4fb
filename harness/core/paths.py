"""Reading input files: the project boundary, and UTF-8 text with every failure explained.

Configs, templates and gold sets come from pull requests. A config naming `../../etc/passwd`,
`/proc/self/environ` (the environment, API keys included) or a symlink that leads out of the
checkout would make CI read that file into prompts, sent to a server the config also chooses,
and into a report posted on the pull request. So every input file a config names (gold sets,
templates, few-shot pools, guidelines, replay files) must lie, after following symlinks, inside
the project:

- the project is the git work tree that holds the config (the nearest folder above it with a
  `.git`), or the folder named by $PRELABEL_PROJECT_ROOT (for a checkout without `.git`);
- folders listed in $PRELABEL_ALLOW_PATHS (separated by `os.pathsep`) are allowed as well;
- a config in no git work tree, with $PRELABEL_PROJECT_ROOT unset, has no boundary: it is a
  scratch file of whoever runs prelabel (a pull request always arrives in a work tree).

The opt-ins are environment variables on purpose: whoever runs prelabel sets them, while a key
in the config could be set by the very pull request it is meant to stop. Local model weights
(`local/path/to/model.gguf`) are exempt: they never reach a prompt. Outputs (`runs/`, the
cache) are not restricted: they only ever create new files.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import UserError

ROOT_ENV = "PRELABEL_PROJECT_ROOT"
ALLOW_ENV = "PRELABEL_ALLOW_PATHS"
OUTSIDE_HINT = (
    "keep a config's inputs inside its project (the git work tree that holds it); to read "
    f"files elsewhere, whoever runs prelabel sets {ALLOW_ENV}=<folder> in the environment "
    "(a config cannot allow this itself: it may come from a pull request)"
)


def project_root(config_path: Path) -> Path | None:
    """$PRELABEL_PROJECT_ROOT, else the git work tree holding the config, else None."""
    explicit = os.environ.get(ROOT_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    # Where the config was named, not where a symlink to it leads: the boundary is the
    # checkout that the command line points into.
    folder = Path(os.path.abspath(config_path)).parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate.resolve()
    return None


def no_boundary_warning(config_path: Path) -> str | None:
    """What to tell whoever runs a config that has no project boundary (None: it has one)."""
    if project_root(config_path) is not None:
        return None
    folder = Path(os.path.abspath(config_path)).parent
    return (
        f"{config_path} is in no git work tree and ${ROOT_ENV} is not set, so the files it "
        "names may be read from anywhere on this machine (no project boundary); to set one, "
        f"keep it in a git checkout or set {ROOT_ENV} to its project folder, e.g. "
        f"`export {ROOT_ENV}={folder}` (README, 'Safety with configs and templates from pull "
        "requests')"
    )


def allowed_roots(config_path: Path) -> list[Path] | None:
    """Folders the config's inputs may come from; None when there is no boundary."""
    root = project_root(config_path)
    if root is None:
        return None
    extra = os.environ.get(ALLOW_ENV, "")
    return [root, *(Path(p).expanduser().resolve() for p in extra.split(os.pathsep) if p)]


def outside_message(what: str, value: Path | str, base: Path, roots: list[Path]) -> str | None:
    """Why the config's path `value` (relative to `base`) may not be read, or None."""
    lexical = Path(os.path.normpath(base / Path(value).expanduser()))
    real = lexical.resolve()
    if any(real.is_relative_to(root) for root in roots):
        return None
    via = " through a symlink" if any(lexical.is_relative_to(r) for r in roots) else ""
    return (
        f"{what} '{value}' resolves{via} to {real}, outside the project {roots[0]}; "
        "a config may only read files inside its project"
    )


def read_text_file(path: Path, what: str) -> tuple[bytes, str]:
    """Read a UTF-8 file, turning every OS and encoding problem into a UserError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError.at(
            f"{what} not found",
            file=path,
            hint="check the path in the config (relative paths are relative to the config file)",
        ) from None
    except IsADirectoryError:
        raise UserError.at(
            f"{what} is a directory, expected a file",
            file=path,
            hint="point the config at the file inside that folder",
        ) from None
    except OSError as exc:
        raise UserError.at(
            f"cannot read {what}: {exc.strerror}",
            file=path,
            hint="check the file's permissions (the user running prelabel must be able to read it)",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError.at(
            f"{what} is not valid UTF-8 (byte {exc.start})",
            file=path,
            line=line,
            hint="re-save the file as UTF-8",
        ) from None
    if not text.strip():
        raise UserError.at(
            f"{what} is empty", file=path, hint=f"fill in the {what}, or point the config elsewhere"
        )
    return raw, text
