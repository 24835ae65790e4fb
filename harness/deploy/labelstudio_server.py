"""Live Label Studio (deploy station): push a label run's review tasks to a project on a
Label Studio server and pull its export back, through the official `label-studio-sdk`.

The tasks are exactly those of the offline export (`export_review_tasks`): the pre-label is a
prediction (model_version = the setup, score = its confidence), blind items carry none. Each
task's data holds `prelabel_item_id` and `prelabel_run` (the label run's folder name): that
pair is the task's key, so a rerun of `push` lists the project's tasks, skips the keys it
already holds, and never duplicates a task. The pull is the project's JSON export, the file a
person would download; the offline import code reads it, so online and offline give the same
rows.

The API key comes from LABEL_STUDIO_API_KEY only (a key on a command line lands in shell
history and `ps`). The SDK takes a legacy token or a personal access token (a JWT refresh
token, exchanged for short-lived access tokens as it goes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import quoteattr

from harness.core.errors import UserError
from harness.tasks import TASKS

KEY_ENV = "LABEL_STUDIO_API_KEY"
INSTALL_HINT = "pip install 'prelabel[labelstudio]'"
RUN_KEY = "prelabel_run"


def api_key() -> str:
    """The key from the environment, or a UserError saying where to put it."""
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise UserError.at(
            f"{KEY_ENV} is not set: Label Studio needs an API key",
            hint=f"copy the key (or personal access token) from Label Studio's Account & "
            f"Settings page and `export {KEY_ENV}=...`; it is read from the environment only",
        )
    return key


def connect(url: str) -> Any:
    """A label-studio-sdk client for `url`, with the key from the environment."""
    key = api_key()
    try:
        # imported here: the SDK is an optional extra, and heavy
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise UserError.at(
            "the Label Studio SDK is not installed", hint=f"`{INSTALL_HINT}`"
        ) from None
    return LabelStudio(base_url=url.rstrip("/"), api_key=key)


@contextmanager
def _calls(url: str, project: int | None = None) -> Iterator[None]:
    """SDK and network errors -> UserErrors that say what to check."""
    import httpx  # a dependency of the SDK and of litellm: present whenever the SDK is
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body)[:500]
        if exc.status_code in (401, 403):
            raise UserError.at(
                f"Label Studio at {url} refused the key ({exc.status_code}): {body}",
                hint=f"check {KEY_ENV}: a personal access token, or a legacy token where the "
                "organization allows them",
            ) from None
        if exc.status_code == 404 and project is not None:
            raise UserError.at(
                f"Label Studio at {url} has no project {project} (404)",
                hint="pass --project with the number in the project's address (/projects/ID)",
            ) from None
        raise UserError.at(f"Label Studio at {url} answered {exc.status_code}: {body}") from None
    except httpx.HTTPError as exc:
        raise UserError.at(
            f"cannot reach Label Studio at {url}: {exc}",
            hint="check --url (e.g. http://localhost:8080) and that the server is running",
        ) from None


def labeling_config(
    task_type: str, labels: Sequence[str], *, from_name: str = "label", text_key: str = "text"
) -> str:
    """The labeling config XML for an experiment's task: the item's text and a Choices control
    of its labels (one for classification and ordinal, several for multilabel), the names that
    `export_review_tasks` and the import use by default."""
    task = TASKS.get(task_type)
    # A task whose own control is Choices or Rating reads one text; a pair of responses
    # (a Pairwise control first) needs two objects, which a config of one text cannot show.
    if task is None or task.label_studio_controls[:1] not in (("choices",), ("rating",)):
        raise UserError.at(
            f"prelabel writes labeling configs for classification, multilabel and ordinal "
            f"tasks, not {task_type!r}",
            hint="write the project's config in Label Studio yourself: `push` reads the "
            "control's name from the project",
        )
    choice = "multiple" if task.label_set else "single"
    lines = [
        "<View>",
        f'  <Text name="text" value={quoteattr("$" + text_key)}/>',
        f'  <Choices name={quoteattr(from_name)} toName="text" choice={quoteattr(choice)} '
        'showInline="true">',
        *(f"    <Choice value={quoteattr(str(label))}/>" for label in labels),
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def project_config(url: str, project: int) -> str:
    """The labeling config XML of a project on the server."""
    client = connect(url)
    with _calls(url, project):
        return client.projects.get(id=project).label_config or ""


def _existing_keys(client: Any, project: int, page_size: int) -> set[tuple[str, str]]:
    """(item, run) of every task the project holds, read page by page."""
    keys = set()
    for task in client.tasks.list(project=project, page_size=page_size):
        data = getattr(task, "data", None) or {}
        if data.get("prelabel_item_id") is not None:
            keys.add((str(data["prelabel_item_id"]), str(data.get(RUN_KEY))))
    return keys


def push_tasks(
    url: str, project: int, tasks: Iterable[Mapping[str, Any]], run: str, *, page_size: int = 100
) -> dict[str, int]:
    """Send the tasks the project does not hold yet, `page_size` per request.

    Returns {"sent", "skipped", "predictions"}: tasks imported now, tasks already there (from
    an earlier push of the same run), predictions imported with the new tasks."""
    if page_size < 1:
        raise UserError.at(f"page size {page_size} must be at least 1")
    tasks = list(tasks)
    client = connect(url)
    with _calls(url, project):
        have = _existing_keys(client, project, page_size)
        todo = []
        for task in tasks:
            data = {**task["data"], RUN_KEY: run}
            if (str(data["prelabel_item_id"]), run) not in have:
                todo.append({**task, "data": data})
        predictions = 0
        for start in range(0, len(todo), page_size):
            page = todo[start : start + page_size]
            # One request per page: Label Studio imports a page in one transaction, so a page
            # is all there or not at all, and a rerun after a failure sends only what is missing.
            client.projects.import_tasks(id=project, request=page, return_task_ids=True)
            predictions += sum(len(t.get("predictions") or []) for t in page)
    return {"sent": len(todo), "skipped": len(tasks) - len(todo), "predictions": predictions}


def pull_export(url: str, project: int, *, all_tasks: bool = False) -> bytes:
    """The project's JSON export (annotated tasks only unless `all_tasks`), as bytes."""
    client = connect(url)
    with _calls(url, project):
        return b"".join(
            client.projects.exports.download_sync(
                id=project, export_type="JSON", download_all_tasks=all_tasks
            )
        )
