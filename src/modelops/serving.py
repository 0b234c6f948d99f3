"""Serve the model that holds a stage over HTTP (FastAPI on uvicorn), and follow the stage.

The server resolves the stage to a version, fetches its bundle as ``modelops
get`` does (bytes checked against dvc.lock at that version), and loads it
without pickle. A poller (and ``POST /v1/reload``) notices when the stage moves
to another version. It loads and verifies the new bundle beside the old one,
then swaps one reference. If the new bundle fails, the old version keeps
answering and ``/v1/model`` says why.

Requests are validated by hand, column by column, instead of through a
pydantic model per feature. That is fast, and every error names the record and
the field. Validation never lets a bad request reach the model, so bad
input gets a 4xx, never a 5xx.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request  # at module level: FastAPI resolves route annotations by name

from modelops.errors import ModelopsError, RegistryError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from modelops.bundle import Model
    from modelops.params import ServingParams

log = logging.getLogger("modelops.serving")
CONFIG_ENV = "MODELOPS_SERVE_CONFIG"


class RequestError(Exception):
    """A client mistake: becomes a 4xx JSON body naming the record and field."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": error, "message": message}
        if record is not None:
            self.body["record"] = record
        if field is not None:
            self.body["field"] = field


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _integer(digits: str) -> int | float:
    """A JSON integer literal: Python refuses to convert one of over 4,300 digits (its
    message tells the client to call ``sys.set_int_max_str_digits``), so such a literal is
    read as a float, which is infinite there, and refused as ``not_finite`` like 1e999."""
    return int(digits) if len(digits) <= 4000 else float(digits)


MAX_DEPTH = 64  # where the nesting of a refused body is reported (records need depth 2)
_NUMBER_TYPES = frozenset((int, float, type(None)))  # type(): a bool is not a number here
_CATEGORY_TYPES = frozenset((str, type(None)))
MAX_NAMED = 20  # ignored fields named in a response


def _json_type(value: Any) -> str:
    """A parsed JSON value's type in JSON's words (an integer past 64 bits is a float to
    orjson and an int to the standard parser: a number either way)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", dict: "an object", list: "an array"}.get(type(value), "a value")


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


def _too_deep(body: bytes) -> tuple[int | None, str | None]:
    """The record (and field) where ``body`` first nests deeper than MAX_DEPTH."""
    import re

    depth, commas, key, last = 0, 0, None, None
    for m in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', body):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return commas, key
        elif tok in (b"]", b"}"):
            depth -= 1
        elif tok == b"," and depth == 1:
            commas, key = commas + 1, None
        elif tok == b":" and depth == 2 and last is not None:
            key = _short(last.decode("utf-8", "replace"))
        last = tok[1:-1] if tok[:1] == b'"' else None
    return None, None


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels inside ``value``: the same
    rule whichever parser read the body (orjson takes 1,024 levels, the standard one about
    1,000)."""
    level = [value]
    for _ in range(limit):
        level = [
            v
            for x in level
            if isinstance(x, list | dict)
            for v in (x.values() if isinstance(x, dict) else x)
        ]
        if not level:
            return False
    return any(isinstance(x, list | dict) for x in level)


@dataclass
class Validator:
    """Turns JSON records into the model's input arrays, or says exactly what is wrong."""

    numeric: list[str]
    categorical: list[str]
    categories: dict[str, set[str]]
    ignored: set[str]
    reject_unknown_categories: bool
    max_rows: int

    @classmethod
    def for_model(cls, model: Model, s: ServingParams) -> Validator:
        pre = model.preprocessor
        return cls(
            numeric=list(pre.numeric),
            categorical=list(pre.categorical),
            categories={c: set(v) for c, v in zip(pre.categorical, pre.categories_, strict=True)},
            ignored=set(model.schema.dropped),
            reject_unknown_categories=s.unknown_categories == "reject",
            max_rows=s.max_rows,
        )

    def parse(self, body: bytes) -> list[Any]:
        import orjson

        try:
            # orjson parses the same numbers to the same floats (checked in the tests) in a
            # fifth of the time. What it refuses (NaN, a number beyond a float, a lone
            # surrogate, another encoding, deep nesting) goes to the standard parser, whose
            # errors the API documents, or which takes what orjson would not.
            records = orjson.loads(body)
        except orjson.JSONDecodeError:
            records = self._parse_standard(body)
        return self._check_list(records)

    def _parse_standard(self, body: bytes) -> Any:
        try:
            return json.loads(body, parse_constant=_no_constants, parse_int=_integer)
        except RecursionError:  # nesting deeper than the parser's stack; no record has any
            record, field = _too_deep(body)
            where = "" if record is None else f"record {record}" + (f", {field!r}" if field else "")
            raise RequestError(
                422,
                "too_deep",
                f"{where + ': ' if where else ''}lists or objects nest more than {MAX_DEPTH} deep; "
                "a record is an object of numbers, strings and nulls",
                record,
                field,
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(
                400, "malformed_json", f"the body is not valid JSON: {exc}"
            ) from None

    def _check_list(self, records: Any) -> list[Any]:
        if not isinstance(records, list):
            raise RequestError(
                422,
                "not_a_list",
                "the body must be a JSON list of records (objects keyed by feature)",
            )
        if not records:
            raise RequestError(422, "empty", "the list of records is empty")
        if len(records) > self.max_rows:
            raise RequestError(
                413,
                "too_many_rows",
                f"{len(records)} records is more than the limit of {self.max_rows} "
                f"(serving.max_rows); split the request or use `modelops predict`",
            )
        return records

    def arrays(self, records: list[Any]) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
        """The numeric matrix, one array per categorical feature, and the fields ignored."""
        fast = self._arrays_at_once(records)
        return fast if fast is not None else self._arrays_by_value(records)

    def _arrays_at_once(
        self, records: list[Any]
    ) -> tuple[np.ndarray, list[np.ndarray], list[str]] | None:
        """``arrays`` for a request every rule passes, checked column by column in C (types
        by set, the matrix by one conversion); None at the first doubt, and
        ``_arrays_by_value`` then finds and names the first fault, record by record."""
        import itertools
        import operator

        import numpy as np

        n, expected = len(records), len(self.numeric) + len(self.categorical)
        ignored: dict[str, None] = {}
        try:
            for i, rec in enumerate(records):
                if type(rec) is not dict:
                    return None
                if len(rec) != expected or not self.ignored.isdisjoint(rec):
                    self._check_keys(i, rec, ignored)
            if self.numeric:
                get = operator.itemgetter(*self.numeric)
                rows = list(map(get, records))
                values = rows if len(self.numeric) > 1 else [(v,) for v in rows]
                flat = itertools.chain.from_iterable(values)
                if not set(map(type, flat)) <= _NUMBER_TYPES:  # bool, str, list, dict: refused
                    return None
                X = np.array(values, dtype=float)  # None becomes NaN: missing
                if np.isinf(X).any():
                    return None
            else:
                X = np.empty((n, 0))
            cats = []
            for name in self.categorical:
                column = [rec[name] for rec in records]
                if not set(map(type, column)) <= _CATEGORY_TYPES:
                    return None
                if self.reject_unknown_categories:
                    known = self.categories[name]
                    if any(v is not None and v not in known for v in column):
                        return None
                cats.append(np.array(column, dtype=object))
        except (KeyError, RequestError, OverflowError):  # OverflowError: an int beyond a float
            return None
        return X, cats, list(ignored)

    def _arrays_by_value(
        self, records: list[Any]
    ) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
        import numpy as np

        from modelops import inference

        n = len(records)
        X = np.empty((n, len(self.numeric)))
        cats = [np.empty(n, dtype=object) for _ in self.categorical]
        expected = len(self.numeric) + len(self.categorical)
        ignored: dict[str, None] = {}
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise RequestError(422, "not_an_object", f"record {i} must be a JSON object", i)
            if len(rec) != expected or not self.ignored.isdisjoint(rec):
                self._check_keys(i, rec, ignored)
            for j, name in enumerate(self.numeric):
                try:
                    v = rec[name]
                except KeyError:
                    raise RequestError(
                        422, "missing_feature", f"record {i} has no {name!r}", i, name
                    ) from None
                if v is None:
                    X[i, j] = math.nan  # missing: imputed as in training
                    continue
                try:
                    X[i, j] = inference.json_number(v)
                except ValueError as exc:
                    raise RequestError(
                        422, "not_finite", f"record {i}: {name!r} {exc}", i, name
                    ) from None
                except TypeError:
                    raise RequestError(
                        422,
                        "wrong_type",
                        f"record {i}: {name!r} must be a number (or null), got {_json_type(v)}",
                        i,
                        name,
                    ) from None
            for j, name in enumerate(self.categorical):
                try:
                    v = rec[name]
                except KeyError:
                    raise RequestError(
                        422, "missing_feature", f"record {i} has no {name!r}", i, name
                    ) from None
                if v is not None and type(v) is not str:
                    raise RequestError(
                        422,
                        "wrong_type",
                        f"record {i}: {name!r} must be a string (or null), got {_json_type(v)}",
                        i,
                        name,
                    )
                if (
                    v is not None
                    and self.reject_unknown_categories
                    and v not in self.categories[name]
                ):
                    allowed = ", ".join(sorted(self.categories[name])[:10])
                    raise RequestError(
                        422,
                        "unknown_category",
                        f"record {i}: {name!r} = {_short(v)!r} was never seen in "
                        f"training (allowed: {allowed})",
                        i,
                        name,
                    )
                cats[j][i] = v
        return X, cats, list(ignored)

    def _check_keys(self, i: int, rec: dict[str, Any], ignored: dict[str, None]) -> None:
        from modelops import inference

        missing, extra = inference.columns(rec, [*self.numeric, *self.categorical])
        if missing:
            raise RequestError(
                422, "missing_feature", f"record {i} has no {missing[0]!r}", i, missing[0]
            )
        for key in extra:
            if _nests_deeper(rec[key], MAX_DEPTH - 2):  # the list and the record are 2 levels
                raise RequestError(
                    422,
                    "too_deep",
                    f"record {i}, {_short(key)!r}: lists or objects nest more than {MAX_DEPTH} "
                    "deep; a record is an object of numbers, strings and nulls",
                    i,
                    key,
                )
            if key not in ignored and len(ignored) < MAX_NAMED:
                ignored[key] = None

    def schema(self) -> list[dict[str, Any]]:
        return [{"name": n, "type": "number", "nullable": True} for n in self.numeric] + [
            {
                "name": c,
                "type": "string",
                "nullable": True,
                "categories": sorted(self.categories[c]),
            }
            for c in self.categorical
        ]


@dataclass
class Loaded:
    version: str
    commit: str
    md5: str
    model: Model
    validator: Validator
    metrics: dict[str, Any]
    loaded_at: float


def _retired(st, name: str, version: str) -> bool:
    info = st.versions(name).get(version)
    return info is None or info.retired is not None


@dataclass
class ModelServer:
    """The model currently served, and how it follows the stage (or, ``pinned``, serves one
    version until it is retired)."""

    root: str
    name: str
    stage: str | None
    settings: ServingParams
    pinned: str | None = None
    current: Loaded | None = None
    last_error: str | None = None
    last_check: float | None = None
    log: Any = None  # predlog.PredictionLog of this worker, when serving.log.dir is set
    ids: Any = None  # predlog.RequestIds
    feedback: Any = None  # predlog.Feedback
    _rules: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def load(self, version: str | None = None) -> Loaded:
        """Fetch, verify and load the stage's version (or ``version``, or the pinned one)."""
        from modelops import versions
        from modelops.workspace import Workspace

        ws = Workspace(self.root)
        version = version or self.pinned
        info = versions.resolve(ws, self.name, version, None if version else self.stage)
        if version and info.retired is not None:  # refused before its bytes are fetched
            raise RegistryError(
                f"{self.name}@{version} is retired and is not served; serve a live version "
                f"or a stage"
            )
        got = versions.load_resolved(ws, self.name, info)
        return Loaded(
            got.info.version,
            got.info.commit,
            got.md5,
            got.model,
            Validator.for_model(got.model, self.settings),
            got.metrics(ws),
            time.time(),
        )

    def check(self) -> bool:
        """Follow the stage: load a new holder beside the old one and swap; True if swapped."""
        from modelops import registry as reg
        from modelops.workspace import Workspace

        with self._lock:
            self.last_check = time.time()
            try:
                st = reg.state(Workspace(self.root))
                cur = self.current
                if cur is not None and _retired(st, self.name, cur.version):
                    # A retired version answers no more, as a new server would refuse it; the
                    # stage's next holder is loaded below (or the error says what to do).
                    self.current = None
                    log.error("stopped serving %s@%s: it was retired", self.name, cur.version)
                if self.pinned:
                    held = self.pinned
                    if _retired(st, self.name, held):
                        raise RegistryError(
                            f"{self.name}@{held} was retired; serve a live version or a stage"
                        )
                else:
                    held = st.holder(self.name, self.stage)
                if held is None:
                    raise RegistryError(f"no version of {self.name} holds {self.stage!r} any more")
                if self.current is not None and held == self.current.version:
                    return False
                new = self.load()
            except Exception as exc:  # keep serving the old model whatever went wrong
                message = (
                    str(exc) if isinstance(exc, ModelopsError) else f"{type(exc).__name__}: {exc}"
                )
                if message != self.last_error:
                    log.error("keeping %s: %s", self.current and self.current.version, message)
                self.last_error = message
                return False
            old = self.current
            self.current = new  # one reference assignment: requests see old or new, never half
            self.last_error = None
            log.info("now serving %s@%s (was %s)", self.name, new.version, old and old.version)
            return True

    def start_log(self) -> None:
        """This worker's prediction log (``serving.log.dir``), its ids and the feedback store."""
        from modelops import predlog

        where = self.settings.log.dir
        if not where:
            return
        directory = Path(self.root) / where
        self.log = predlog.PredictionLog(directory, self.settings.log)
        try:
            self.ids = predlog.RequestIds.of(directory)
            self.log.start()
        except (OSError, ModelopsError) as exc:  # an unwritable directory: answer without it
            self.log.stats.error = f"prediction log not started: {exc}"
            log.error("%s; answering goes on without it", self.log.stats.error)
            self.ids = None
            return
        self.feedback = predlog.Feedback(directory)

    def rules_of(self, version: str) -> Any:
        """What a feedback label must be for ``version``: from the served model, or from the
        model card committed at that version (None if it is not registered)."""
        from modelops import predlog

        cur = self.current
        if cur is not None and version == cur.version:
            s = cur.model.schema
            return predlog.Rules(s.task, tuple(map(str, s.classes or ())), s.target)
        if version not in self._rules:
            from modelops import registry as reg
            from modelops.workspace import Workspace

            ws = Workspace(self.root)
            info = reg.state(ws).versions(self.name).get(version)
            card = (
                ws.json_at(info.commit, ws.paths_at(info.commit)["card"] + ".json")
                if info
                else None
            )
            if not isinstance(card, dict):
                return None
            data, model = card.get("data") or {}, card.get("model") or {}
            self._rules[version] = predlog.Rules(
                str(model.get("task")),
                tuple(map(str, data.get("classes") or ())),
                str(data.get("target")),
            )
        return self._rules[version]

    def start_polling(self) -> None:
        if self.settings.poll_seconds <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(self.settings.poll_seconds):
                self.check()

        threading.Thread(target=loop, name="modelops-poll", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None):
    from starlette.responses import Response

    # allow_nan=False: an answer that is not finite is a bug here, never invalid JSON on the wire
    return Response(
        json.dumps(data, allow_nan=False),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _too_large(what: str, limit: int, close: bool = False):
    # close: the rest of the body is never read, so the connection cannot carry another request
    return _json(
        {"error": "too_large", "message": f"{what} is over {limit} bytes (serving.max_body_bytes)"},
        413,
        {"Connection": "close"} if close else None,
    )


def token_from_env(settings: ServingParams) -> str | None:
    """The bearer token the server requires, or None; an empty one is refused, not ignored."""
    name = settings.token_env
    token = os.environ.get(name) if name else None
    if token is not None and not token.strip():
        raise UsageError(
            f"the environment variable {name} (serving.token_env) is set but empty, which would "
            f"serve without authentication; set a token or unset {name}"
        )
    return token


class Auth:
    """The bearer-token check of every route but /health (none when no token is set)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def refused(self, request: Request):
        """None when ``request`` may pass, else the 401 response to send."""
        if not self.token:
            return None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), self.token.encode()):
            return None
        return _json(
            {"error": "unauthorized", "message": "send Authorization: Bearer <token>"},
            401,
            {"WWW-Authenticate": "Bearer"},
        )


def model_info(server: ModelServer, cur: Loaded) -> dict[str, Any]:
    """What /v1/model says about the served version."""
    s = cur.model.schema
    return {
        "name": server.name,
        "version": cur.version,
        "stage": server.stage,
        "commit": cur.commit,
        "model_md5": cur.md5,
        "task": s.task,
        "kind": cur.model.estimator.kind,
        "features": cur.validator.schema(),
        "ignored_columns": sorted(s.dropped),
        "classes": s.classes,
        "positive_class": s.positive_class,
        "metrics": cur.metrics,
        "max_rows": server.settings.max_rows,
        "loaded_at": cur.loaded_at,
        "last_check": server.last_check,
        "last_reload_error": server.last_error,
        # written / dropped records and files of this worker; error once logging stopped
        "log": server.log.stats.to_dict() if server.log is not None else None,
    }


def predict_openapi(max_rows: int) -> dict[str, Any]:
    """The OpenAPI description of /v1/predict's body and answers."""
    value = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}
    records = {
        "type": "array",
        "minItems": 1,
        "maxItems": max_rows,
        "items": {"type": "object", "additionalProperties": value},
    }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": records}}},
        "responses": {
            "200": {"description": "predictions"},
            "400": {"description": "malformed JSON"},
            "413": {"description": "too many records or too large a body"},
            "422": {"description": "a record or field is invalid"},
        },
    }


async def read_body(request: Request, limit: int):
    """The request body, or a 413 response as soon as it passes ``limit`` bytes (a chunked
    body declares no length, so reading stops at the limit rather than after the body)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _too_large(f"body of {declared} bytes", limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large("body", limit, close=True)
        chunks.append(chunk)
    return b"".join(chunks)


def answer(cur: Loaded, body: bytes, server: ModelServer | None = None):
    """The predictions for one request body: 200, or a 4xx naming the record and field. With
    a prediction log, each record gets a request id and the request is logged."""
    from modelops import inference

    try:
        records = cur.validator.parse(body)
        numeric, cats, ignored = cur.validator.arrays(records)
    except RequestError as exc:
        return _json(exc.body, exc.status)
    answers = inference.predict(cur.model, numeric, cats)
    if answers.refused.any():
        i = int(answers.refused.argmax())
        why, feature = inference.reason(answers, i)
        refused = {"error": "no_finite_answer", "message": f"record {i}: {why}", "record": i}
        if feature is not None:
            refused["field"] = feature
        return _json(refused, 422)
    out: dict[str, Any] = {"version": cur.version, **answers.to_json()}
    if ignored:
        out["ignored_fields"] = ignored
    if server is not None and server.ids is not None:
        from modelops import predlog

        ids = server.ids.issue(cur.version, len(numeric))
        out["request_ids"] = ids
        pre = cur.model.preprocessor
        server.log.submit(
            predlog.Answered(
                ids,
                time.time(),
                cur.version,
                (pre.numeric, pre.categorical),
                numeric,
                cats,
                answers,
            )
        )
    return _answer_json(out)


def _answer_json(data: dict[str, Any]):
    """A prediction's body through orjson (a tenth of ``json.dumps``'s time on 100 records).
    Every number in it is finite (refused records never get here); a label orjson cannot
    encode (a lone surrogate) goes through ``_json``."""
    import orjson
    from starlette.responses import Response

    try:
        return Response(orjson.dumps(data), media_type="application/json")
    except orjson.JSONEncodeError:
        return _json(data)


def check_exclude(settings: ServingParams, cur: Loaded, name: str) -> None:
    """serving.log.exclude must name inputs of the model: a misspelt name would let the very
    column it was meant to keep out be logged."""
    if not settings.log.dir:
        return
    pre = cur.model.preprocessor
    inputs = [*pre.numeric, *pre.categorical]
    unknown = [c for c in settings.log.exclude if c not in inputs]
    if unknown:
        raise UsageError(
            f"serving.log.exclude: {unknown[0]!r} is not an input of {name}@{cur.version} "
            f"(its inputs: {', '.join(inputs[:8])}{', ...' if len(inputs) > 8 else ''}); fix "
            f"the name, or that column would be logged"
        )


def take_feedback(server: ModelServer, body: bytes):
    """Store the labels of one feedback request, all or none: 200, or a 4xx naming the record."""
    from modelops import predlog

    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return _json({"error": "not_json", "message": "the body is not JSON"}, 400)
    if isinstance(parsed, list) and len(parsed) > server.settings.max_rows:
        limit = server.settings.max_rows
        message = f"{len(parsed)} records; at most {limit} per request (serving.max_rows)"
        return _json({"error": "too_many_records", "message": message}, 413)
    try:
        rows = predlog.check_labels(parsed, server.ids, server.rules_of)
        server.feedback.add(rows)
    except predlog.StoreError as exc:
        return _json({"error": "feedback_unavailable", "message": str(exc)}, 503)
    except predlog.FeedbackError as exc:
        out = {"error": exc.error, "message": str(exc)}
        if exc.record is not None:
            out["record"] = exc.record
        return _json(out, exc.status)
    return _json({"stored": len(rows)})


def create_app(server: ModelServer):
    """The FastAPI application serving ``server``'s model."""
    import asyncio
    import contextlib

    from fastapi import FastAPI

    auth = Auth(token_from_env(server.settings))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if server.current is None:
            server.check()
        server.start_log()
        server.start_polling()
        yield
        server.stop()
        if server.log is not None:
            server.log.close()  # SIGTERM: what was answered is written and published

    app = FastAPI(
        title="modelops model server",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    def not_ready():
        return _json({"error": "not_ready", "message": server.last_error}, 503)

    @app.get("/health", summary="Liveness: the process answers")
    async def health():
        return _json({"status": "ok"})

    @app.get("/ready", summary="Readiness: a model is loaded")
    async def ready(request: Request):
        if refused := auth.refused(request):
            return refused
        cur = server.current
        if cur is None:
            return _json({"ready": False, "error": server.last_error}, 503)
        return _json({"ready": True, "version": cur.version})

    @app.get("/v1/model", summary="The served model: version, stage, input schema, metrics")
    async def model(request: Request):
        if refused := auth.refused(request):
            return refused
        cur = server.current
        return not_ready() if cur is None else _json(model_info(server, cur))

    @app.post("/v1/reload", summary="Check the stage now and swap to its version if it moved")
    async def reload(request: Request):
        if refused := auth.refused(request):
            return refused
        swapped = await asyncio.to_thread(server.check)
        cur = server.current
        return _json(
            {"swapped": swapped, "version": cur and cur.version, "error": server.last_error}
        )

    @app.post(
        "/v1/predict",
        summary="Predict for a list of records",
        openapi_extra=predict_openapi(server.settings.max_rows),
    )
    async def predict(request: Request):
        if refused := auth.refused(request):
            return refused
        cur = server.current  # one read: the whole request uses one version
        if cur is None:
            return not_ready()
        body = await read_body(request, server.settings.max_body_bytes)
        return body if not isinstance(body, bytes) else answer(cur, body, server)

    @app.post("/v1/feedback", summary="Ground truth for answered records, by request id")
    async def feedback(request: Request):
        if refused := auth.refused(request):
            return refused
        if server.feedback is None:
            if server.log is not None:  # configured, but it could not start
                message = f"{server.log.stats.error}; feedback is kept beside the log"
                return _json({"error": "log_unavailable", "message": message}, 503)
            message = "no prediction log: set serving.log.dir to take feedback"
            return _json({"error": "no_log", "message": message}, 404)
        body = await read_body(request, server.settings.max_body_bytes)
        if not isinstance(body, bytes):
            return body
        return await asyncio.to_thread(take_feedback, server, body)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        return auth.refused(request) or _json(app.openapi())

    _plain_route(app, "/v1/predict", predict)
    return app


def _plain_route(app, path: str, endpoint) -> None:
    """Dispatch ``path`` through Starlette's plain ``Route``, which calls ``endpoint`` with the
    request, instead of FastAPI's, which solves the endpoint's dependencies on every call.
    The schema is still FastAPI's: ``app.openapi()`` reads the routes as they were declared,
    once, before the swap."""
    from starlette.routing import Route

    app.openapi()  # cached on the app: /v1/predict stays documented
    routes = app.router.routes
    i = next(i for i, r in enumerate(routes) if getattr(r, "path", None) == path)
    # First in the list: the router tries routes in order, and this one carries the traffic.
    routes.insert(0, Route(path, endpoint, methods=list(routes.pop(i).methods)))


def app_from_env():
    """uvicorn factory for ``--workers N``: each worker process builds its own server."""
    from modelops import params

    cfg = json.loads(os.environ[CONFIG_ENV])
    settings = params.load(Path(cfg["root"]) / "params.yaml").serving
    return create_app(
        ModelServer(cfg["root"], cfg["name"], cfg["stage"], settings, cfg.get("version"))
    )


def serve(
    root: str,
    name: str,
    stage: str | None,
    settings: ServingParams,
    host: str,
    port: int,
    workers: int,
    version: str | None = None,
) -> None:
    """Load once to fail early and clearly, then run uvicorn. With ``version`` that version
    is served (pinned) instead of the stage's holder."""
    import uvicorn

    token_from_env(settings)  # before loading: refuse an empty token at once
    server = ModelServer(root, name, stage, settings, version)
    server.current = server.load()
    check_exclude(settings, server.current, name)
    how = f"follows {stage}" if stage else "pinned"
    log.info("serving %s@%s (%s) on http://%s:%d", name, server.current.version, how, host, port)
    if workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(
            {"root": root, "name": name, "stage": stage, "version": version}
        )
        uvicorn.run(
            "modelops.serving:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
    else:
        uvicorn.run(create_app(server), host=host, port=port, log_level="info")
