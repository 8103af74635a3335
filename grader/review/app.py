"""The review web app: Starlette pages and a JSON endpoint over one gradebook.

Who may use it: whoever has the URL. Every path sits under a random token (``/<token>/...``);
anything else is a bare 404, checked in constant time. Saving also needs the token in a request
header, which a page from another site cannot set without a CORS preflight this app never answers.

What the browser may do: the Content-Security-Policy allows scripts, styles and fonts from this
app only (no inline script, no inline style attribute, nothing from another host), and student
answers are sanitised HTML (``grader.review.markdown``). The token never leaves in a Referer.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from grader.course.gradebook import Gradebook
from grader.review import suggest
from grader.review.clustering import DEFAULT_THRESHOLD, Embedder, Grouping, MiniLM, group_answers
from grader.review.data import Answer, ItemInfo, ReviewData, load_review
from grader.review.markdown import render_markdown
from grader.review.refresh import OutputRefresher
from grader.review.scoring import Edit, review_source, save_edits

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
KATEX = STATIC / "vendor" / "katex"

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


@dataclass
class ReviewConfig:
    gradebook: Path
    out_dir: Path | None = None  # where grades.csv and index.html are rewritten (default: the batch's)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    threshold: float = DEFAULT_THRESHOLD
    grouping: bool = True  # False: answers in submission order, no model loaded
    embedder: Embedder | None = None  # default: all-MiniLM-L6-v2, loaded on first use


class TokenGate:
    """Let ``/<token>/...`` through (the token becomes the app's root path, so routes read ``/item/...``)
    with the security headers added; answer every other path with 404 and no hint."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        first, slash, _ = path[len(root):].lstrip("/").partition("/")
        if not hmac.compare_digest(first.encode(), self.token):
            await _with_headers(PlainTextResponse("not found", status_code=404))(scope, receive, send)
            return
        if not slash:
            await _with_headers(RedirectResponse(f"{root}/{first}/"))(scope, receive, send)
            return
        # Starlette routes on the path below root_path: the app sees "/item/..." and "/static/...".
        scope = dict(scope, root_path=f"{root}/{first}")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


class Review:
    """The state the pages share: the config, the embedder and the groups already computed."""

    def __init__(self, config: ReviewConfig) -> None:
        self.config = config
        self.embedder: Embedder = config.embedder or MiniLM()
        self._groups: dict[tuple[str, tuple[str, ...], str], Grouping] = {}
        self._lock = threading.Lock()
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["md"] = render_markdown
        self.env.filters["num"] = _num
        self.refresher = OutputRefresher(config.gradebook, config.out_dir)

    @property
    def base(self) -> str:
        return "/" + self.config.token

    def open(self) -> Gradebook:
        return Gradebook(self.config.gradebook)

    def data(self) -> ReviewData:
        with self.open() as gb:
            return load_review(gb)

    def grouping(self, item: ItemInfo, answers: tuple[Answer, ...]) -> Grouping | None:
        if not self.config.grouping or not answers:
            return None
        key = (item.id, tuple(a.text for a in answers), item.reference)
        with self._lock:
            cached = self._groups.get(key)
        if cached is None:
            cached = group_answers([a.text for a in answers], item.reference, self.embedder, self.config.threshold)
            with self._lock:
                self._groups[key] = cached
        return cached

    def warm_up(self) -> None:
        """Load the model in the background so that the first question page does not wait for it."""
        if self.config.grouping and isinstance(self.embedder, MiniLM):
            threading.Thread(target=self.embedder.load, name="review-model", daemon=True).start()

    def render(self, template: str, **context: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(base=self.base, token=self.config.token,
                                                      katex=(KATEX / "katex.min.js").is_file(), **context)
        return HTMLResponse(page)


# --- pages ---------------------------------------------------------------------------------------------


def index_page(review: Review) -> HTMLResponse:
    data = review.data()
    items = [(item, data.answers.get(item.id, ())) for item in data.items]
    return review.render("index.html.j2", items=items, students=data.students, notes=data.notes,
                         gradebook=str(review.config.gradebook))


def item_page(review: Review, item_id: str) -> HTMLResponse:
    data = review.data()
    item = data.item(item_id)
    if item is None:
        return HTMLResponse(f"no manual item {item_id!r}", status_code=404)
    answers = data.answers.get(item.id, ())
    grouping = review.grouping(item, answers)
    groups: list[dict[str, Any]] = []
    if grouping is None:
        groups.append({"group": None, "members": [(a, suggest.for_answer(i, answers, None)) for i, a in enumerate(answers)],
                       "suggestion": None})
    else:
        for g in grouping.groups:
            members = [(answers[i], suggest.for_answer(i, answers, grouping.vectors)) for i in g.members]
            groups.append({"group": g, "members": members, "suggestion": suggest.for_group(g, answers, grouping.vectors)})
    position = [i.id for i in data.items].index(item.id)
    return review.render("item.html.j2", item=item, groups=groups, n=len(answers),
                         scored=sum(a.points is not None for a in answers),
                         previous=data.items[position - 1].id if position > 0 else None,
                         next=data.items[position + 1].id if position + 1 < len(data.items) else None)


def student_page(review: Review, submission_id: str) -> HTMLResponse:
    data = review.data()
    name = data.student_name(submission_id)
    if name is None:
        return HTMLResponse(f"no submission {submission_id!r} with manual items", status_code=404)
    ids = [sid for sid, _ in data.students]
    position = ids.index(submission_id)
    rows = [(item, a, suggest.for_answer(0, (a,), None)) for item, a in data.of_student(submission_id)]
    return review.render("student.html.j2", submission=submission_id, name=name, rows=rows,
                         previous=ids[position - 1] if position > 0 else None,
                         next=ids[position + 1] if position + 1 < len(ids) else None)


def save(review: Review, body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("edits"), list) or not body["edits"]:
        return 400, {"error": "expected {\"edits\": [{submission, item, points, comment, version}, ...], \"ta\": name}"}
    edits: list[Edit] = []
    for e in body["edits"][:1000]:
        if not isinstance(e, dict):
            return 400, {"error": "every edit must be an object"}
        points = e.get("points")
        version = e.get("version")
        if not isinstance(points, str | int | float | None) or isinstance(points, bool) or not isinstance(version, int):
            return 400, {"error": "points must be a number, a string or null; version an integer"}
        edits.append(Edit(submission=str(e.get("submission", "")), item=str(e.get("item", "")), points=points,
                          comment=str(e.get("comment") or ""), version=version))
    ta = body.get("ta")
    with review.open() as gb:
        results, _ = save_edits(gb, edits, source=review_source(ta if isinstance(ta, str) else ""), refresh=False)
    review.refresher.submit(r.submission for r in results if r.status == "saved")
    return 200, {"results": [r.to_json() for r in results]}


# --- the app ---------------------------------------------------------------------------------------------


def create_app(config: ReviewConfig) -> ASGIApp:
    """The ASGI app, token gate and security headers included."""
    review = Review(config)

    async def index(request: Request) -> Response:
        return await run_in_threadpool(index_page, review)

    async def item(request: Request) -> Response:
        return await run_in_threadpool(item_page, review, request.path_params["item_id"])

    async def student(request: Request) -> Response:
        return await run_in_threadpool(student_page, review, request.path_params["submission_id"])

    async def api_save(request: Request) -> Response:
        supplied = request.headers.get("x-review-token", "")
        if not hmac.compare_digest(supplied.encode(), config.token.encode()):
            return JSONResponse({"error": "missing or wrong X-Review-Token header"}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        status, payload = await run_in_threadpool(save, review, body)
        return JSONResponse(payload, status_code=status)

    routes = [
        Route("/", index),
        Route("/item/{item_id:path}", item),
        Route("/student/{submission_id:path}", student),
        Route("/api/save", api_save, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        review.warm_up()
        yield
        await run_in_threadpool(review.refresher.close)  # the files catch up before the server stops

    return TokenGate(Starlette(routes=routes, lifespan=lifespan), config.token)


def _num(value: float | None) -> str:
    return "" if value is None else f"{round(value, 2):g}"
