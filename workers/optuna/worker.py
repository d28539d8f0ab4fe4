"""The hyperopt sampler: a small Temporal worker serving Optuna's ask-and-tell on task queue `optuna`.

The HyperoptWorkflow (TypeScript) calls four activities, whose JSON shapes are in
lib/contracts/hyperopt.ts: optunaCreateStudy, optunaAsk, optunaTell and optunaSummary. The study
lives in the project's PostgreSQL (Optuna's RDB storage, its tables in the schema `optuna`), so it
survives whatever the workflow survives and optuna-dashboard can open it.

Crash safety, as the contract asks:
  * every trial is created with its key (a user attribute) and its parameters in one transaction,
    so a retried ask finds the trials it made and returns them (a trial left without some of its
    parameters by an older version gets the missing ones on the retry);
  * a retried tell leaves a finished trial as it is and counts it in `already`;
  * no sampler state lives in this process: each parameter of each trial is drawn by a TPESampler
    built for that draw, seeded from (study seed, trial number, parameter name). The draw depends
    only on what the study holds, so a killed and restarted worker asks exactly what an
    undisturbed one would have.
  * asks and tells of one study are serialised by a PostgreSQL advisory lock, also across worker
    processes (a retry whose first attempt still runs somewhere waits for it).

Environment: TEMPORAL_ADDRESS (localhost:7233), TEMPORAL_NAMESPACE (default), OPTUNA_TASK_QUEUE
(optuna), OPTUNA_STORAGE (an SQLAlchemy URL, used as it is) or else DATABASE_URL (postgres://...,
turned into postgresql+psycopg2://... with search_path=optuna); TLS, API key and payload encryption
from the same variables as the TypeScript workers (temporal_connection.py). With --exit-with-stdin (as the
TypeScript glue starts it) the worker stops when its stdin closes, i.e. when its parent dies.
Logs go to stderr; the line `OPTUNA_WORKER_READY {...}` on stdout says it is polling.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import logging
import math
import os
import signal
import sys
import threading
import urllib.parse
from typing import Any, Iterator, Mapping, Sequence, TypedDict, cast

import optuna
import sqlalchemy
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from temporal_connection import data_converter, tls_config

log = logging.getLogger("optuna-worker")

KEY_ATTR = "key"
"""The trial's user attribute holding the workflow's key for it (`<runId>/<n>`)."""
SEED_ATTR = "seed"
"""The study's user attribute holding its seed."""
SCHEMA = "optuna"
"""Optuna's tables go here, never into `public` with the ledger's."""
READY_PREFIX = "OPTUNA_WORKER_READY"
"""Printed on stdout, followed by JSON, once the worker polls its task queue."""
DEFAULT_STARTUP_TRIALS = 10
BAD_INPUT = "OptunaBadInput"
"""The type of the non-retryable ApplicationError for bad input (OPTUNA_BAD_INPUT in lib/contracts/hyperopt.ts)."""

Scalar = str | int | float | bool


# ---- The contract's shapes (lib/contracts/hyperopt.ts), camelCase as the TypeScript side sends them ----


class StudyRequest(TypedDict, total=False):
    study: str
    seed: int
    attrs: dict[str, Scalar]


class AskRequest(TypedDict, total=False):
    study: str
    seed: int
    space: dict[str, dict[str, Any]]
    keys: list[str]
    startupTrials: int


class AskedTrial(TypedDict):
    key: str
    number: int
    params: dict[str, Scalar]


class TellResultItem(TypedDict, total=False):
    key: str
    number: int
    state: str
    value: float
    attrs: dict[str, Scalar]


class TellRequest(TypedDict):
    study: str
    results: list[TellResultItem]


class SummaryRequest(TypedDict):
    study: str
    top: int


# ---- Errors ----


def bad_input(message: str) -> ApplicationError:
    """An error no retry can fix: the activity fails at once, with this message (type: OPTUNA_BAD_INPUT of lib/contracts/hyperopt.ts)."""
    return ApplicationError(message, type=BAD_INPUT, non_retryable=True)


def require(req: Mapping[str, Any], field: str, kind: type | tuple[type, ...], what: str) -> Any:
    """The request's `field`, checked to be of `kind` (bool is not a number here)."""
    if not isinstance(req, Mapping):
        raise bad_input(f"{what}: the request must be a JSON object, got {type(req).__name__}")
    value = req.get(field)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None or not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise bad_input(f"{what}: `{field}` must be a {names}, got {value!r}")
    return value


# ---- Storage ----


def storage_url(env: Mapping[str, str]) -> str:
    """OPTUNA_STORAGE as it is, else DATABASE_URL as an SQLAlchemy URL whose search_path is `optuna`."""
    explicit = env.get("OPTUNA_STORAGE")
    if explicit:
        return explicit
    database_url = env.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("optuna-worker: set DATABASE_URL (postgres://...) or OPTUNA_STORAGE (an SQLAlchemy URL)")
    return postgres_to_sqlalchemy(database_url)


def postgres_to_sqlalchemy(database_url: str) -> str:
    """postgres://u:p@h:5432/db?sslmode=x -> postgresql+psycopg2://u:p@h:5432/db?sslmode=x&options=-csearch_path%3Doptuna."""
    parts = urllib.parse.urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"optuna-worker: DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join([v for k, v in query if k == "options"] + [f"-csearch_path={SCHEMA}"])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urllib.parse.urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, urllib.parse.urlencode(query), ""))


def masked(url: str) -> str:
    """The URL without its password, for logs."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only a log line
        return "<unparseable storage URL>"


class Sampler:
    """The activities, over one RDB storage (one connection pool, shared by the activity threads)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        if self.is_postgres:
            self._create_schema()
        self.storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        # A separate small engine for the per-study advisory locks.
        self._lock_engine = sqlalchemy.create_engine(url, pool_pre_ping=True, pool_size=2) if self.is_postgres else None
        self._local_locks: dict[str, threading.Lock] = {}
        self._local_locks_guard = threading.Lock()

    def _create_schema(self) -> None:
        """Creates the schema `optuna` if missing (a concurrent creator may win the race)."""
        engine = sqlalchemy.create_engine(self.url)
        try:
            for attempt in range(3):
                try:
                    with engine.begin() as conn:
                        conn.execute(sqlalchemy.text(f"create schema if not exists {SCHEMA}"))
                    return
                except sqlalchemy.exc.IntegrityError:
                    if attempt == 2:
                        raise
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def study_lock(self, study: str) -> Iterator[None]:
        """Serialises the changes to one study: a PostgreSQL advisory lock (all processes) or a thread lock."""
        if self._lock_engine is None:
            with self._local_locks_guard:
                lock = self._local_locks.setdefault(study, threading.Lock())
            with lock:
                yield
            return
        key = int.from_bytes(hashlib.sha256(f"optuna-study:{study}".encode()).digest()[:8], "big", signed=True)
        with self._lock_engine.connect() as conn:
            conn.execute(sqlalchemy.text("select pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("select pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def load(self, name: str, what: str) -> optuna.Study:
        """The study `name`; an unknown one is bad input (the workflow must create it first)."""
        try:
            return optuna.load_study(study_name=name, storage=self.storage)
        except KeyError:
            raise bad_input(f"{what}: no study named {name!r} (optunaCreateStudy creates it)") from None

    # ---- optunaCreateStudy ----

    def create_study(self, req: StudyRequest) -> dict[str, Any]:
        """Creates the study (minimising; load_if_exists), keeping its seed and attrs as user attributes."""
        name = require(req, "study", str, "optunaCreateStudy")
        seed = require(req, "seed", int, "optunaCreateStudy")
        attrs = req.get("attrs") or {}
        if not isinstance(attrs, Mapping):
            raise bad_input(f"optunaCreateStudy: `attrs` must be an object, got {attrs!r}")
        try:
            self.storage.get_study_id_from_name(name)
            created = False
        except KeyError:
            created = True
        study = optuna.create_study(study_name=name, storage=self.storage, direction="minimize", load_if_exists=True)
        known = study.user_attrs.get(SEED_ATTR)
        if known is not None and known != seed:
            raise bad_input(f"optunaCreateStudy: study {name!r} exists with seed {known}, not {seed}")
        for k, v in {**attrs, SEED_ATTR: seed}.items():
            if study.user_attrs.get(k) != v:
                study.set_user_attr(k, v)
        log.info("create study=%s seed=%d created=%s", name, seed, created)
        return {"study": name, "created": created}

    # ---- optunaAsk ----

    def ask(self, req: AskRequest) -> list[AskedTrial]:
        """One trial per key, in order: the key's trial when the study has it, else a new one."""
        name = require(req, "study", str, "optunaAsk")
        seed = require(req, "seed", int, "optunaAsk")
        keys = require(req, "keys", list, "optunaAsk")
        startup = req.get("startupTrials", DEFAULT_STARTUP_TRIALS)
        if not isinstance(startup, int) or isinstance(startup, bool) or startup < 0:
            raise bad_input(f"optunaAsk: `startupTrials` must be a non-negative integer, got {startup!r}")
        if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
            raise bad_input(f"optunaAsk: `keys` must be distinct non-empty strings, got {keys!r}")
        space = distributions(require(req, "space", dict, "optunaAsk"))
        study = self.load(name, "optunaAsk")
        asked: list[AskedTrial] = []
        with self.study_lock(name):
            trials = study.get_trials(deepcopy=False)
            by_key = trials_by_key(trials)
            mirror = StudyMirror.of(trials)
            for key in keys:
                trial = by_key.get(key)
                retried = trial is not None
                if trial is None:
                    trial = self._new_trial(study, mirror, key, space, seed, startup)
                else:
                    trial = self._fill_params(study, mirror, trial, space, seed, startup)
                asked.append({"key": key, "number": trial.number, "params": {p: trial.params[p] for p in space}})
                log.info("ask study=%s trial=%d key=%s%s params=%s", name, trial.number, key, " (retried: existing trial)" if retried else "", json.dumps(asked[-1]["params"]))
        return asked

    def _new_trial(self, study: optuna.Study, mirror: StudyMirror | None, key: str, space: dict[str, BaseDistribution], seed: int, startup: int) -> FrozenTrial:
        """A RUNNING trial holding its key and its parameters, created in one transaction (no keyless or half-drawn trial if we die).

        The parameters are drawn first, against the in-memory copy of the study, for the number the
        trial will get (the study's trial count: numbers are consecutive, and the study lock keeps
        anyone else from creating one meanwhile). Without a copy (numbers not consecutive), the
        trial is created first and drawn for as an existing one.
        """
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={KEY_ATTR: key},
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        if mirror is None:
            trial_id = self.storage.create_new_trial(study._study_id, template_trial=template)
            return self._fill_params(study, None, self.storage.get_trial(trial_id), space, seed, startup)
        template.number = mirror.next_number
        for param, dist in space.items():
            sampler = TPESampler(seed=draw_seed(seed, template.number, param), n_startup_trials=startup)
            value = sampler.sample_independent(mirror.study, template, param, dist)
            template.params[param] = value
            template.distributions[param] = dist
        trial_id = self.storage.create_new_trial(study._study_id, template_trial=template)
        trial = self.storage.get_trial(trial_id)
        if trial.number != template.number:
            # Cannot happen under the study lock; if it did, this trial's draws used another trial's seeds.
            log.error("ask study=%s key=%s: drawn for trial %d but created as %d", study.study_name, key, template.number, trial.number)
        mirror.add(trial)
        return trial

    def _fill_params(self, study: optuna.Study, mirror: StudyMirror | None, trial: FrozenTrial, space: dict[str, BaseDistribution], seed: int, startup: int) -> FrozenTrial:
        """Samples the parameters the trial lacks, each with a sampler seeded from (seed, number, name)."""
        for param, dist in space.items():
            if param in trial.distributions:
                try:
                    check_distribution_compatibility(trial.distributions[param], dist)
                except ValueError as err:
                    raise bad_input(f"optunaAsk: trial {trial.number} ({trial.user_attrs.get(KEY_ATTR)}) has {param} from another range: {err}") from None
                continue
            if trial.state != TrialState.RUNNING:
                raise bad_input(f"optunaAsk: trial {trial.number} ({trial.user_attrs.get(KEY_ATTR)}) is {trial.state.name} and has no {param}: the space changed after it was told")
            sampler = TPESampler(seed=draw_seed(seed, trial.number, param), n_startup_trials=startup)
            value = sampler.sample_independent(mirror.study if mirror else study, trial, param, dist)
            self.storage.set_trial_param(trial._trial_id, param, dist.to_internal_repr(value), dist)
            trial = self.storage.get_trial(trial._trial_id)
            if mirror:
                mirror.set_param(trial.number, param, value, dist)
        return trial

    # ---- optunaTell ----

    def tell(self, req: TellRequest) -> dict[str, int]:
        """Finishes each trial; one already finished (a retried tell) is left as it is and counted in `already`."""
        name = require(req, "study", str, "optunaTell")
        results = require(req, "results", list, "optunaTell")
        checked = [tell_item(r, i) for i, r in enumerate(results)]
        study = self.load(name, "optunaTell")
        told = already = 0
        with self.study_lock(name):
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            for item in checked:
                number, key = item["number"], item["key"]
                trial = by_number.get(number)
                if trial is None:
                    raise bad_input(f"optunaTell: study {name!r} has no trial {number} (key {key})")
                if trial.user_attrs.get(KEY_ATTR) != key:
                    raise bad_input(f"optunaTell: trial {number} of study {name!r} has key {trial.user_attrs.get(KEY_ATTR)!r}, not {key!r}")
                if trial.state.is_finished():
                    already += 1
                    log.info("tell study=%s trial=%d key=%s already %s: left as it is", name, number, key, trial.state.name)
                    continue
                # Attributes first: a finished trial takes none, and setting them again on a retry is harmless.
                for k, v in (item.get("attrs") or {}).items():
                    self.storage.set_trial_user_attr(trial._trial_id, k, v)
                # Straight to the storage, one transaction: study.tell would read the trial twice
                # more to check what was checked above (running, ours, a finite value) under the lock.
                if item["state"] == "complete":
                    self.storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [float(item["value"])])
                else:
                    self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                told += 1
                log.info("tell study=%s trial=%d key=%s state=%s value=%s", name, number, key, item["state"], item.get("value"))
        return {"told": told, "already": already}

    # ---- optunaSummary ----

    def summary(self, req: SummaryRequest) -> dict[str, Any]:
        """Counts, the `top` best complete trials (lowest value first) and Optuna's fANOVA importances."""
        name = require(req, "study", str, "optunaSummary")
        top = require(req, "top", int, "optunaSummary")
        if top < 0:
            raise bad_input(f"optunaSummary: `top` must be >= 0, got {top}")
        study = self.load(name, "optunaSummary")
        trials = study.get_trials(deepcopy=False)
        complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, t.number))
        best = [{"number": t.number, "key": t.user_attrs.get(KEY_ATTR, ""), "value": t.value, "params": dict(t.params)} for t in complete[:top]]
        return {
            "complete": len(complete),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "best": best,
            "importance": self._importance(study, complete),
        }

    def _importance(self, study: optuna.Study, complete: Sequence[FrozenTrial]) -> dict[str, float]:
        """fANOVA over the complete trials (seeded by the study's seed); empty with < 2 trials or one parameter."""
        names = set.intersection(*(set(t.params) for t in complete)) if complete else set()
        if len(complete) < 2 or len(names) < 2:
            return {}
        # Imported here: fANOVA brings scikit-learn, seconds of the worker's start otherwise.
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        seed = study.user_attrs.get(SEED_ATTR)
        try:
            importance = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed if isinstance(seed, int) else 0))
        except (RuntimeError, ValueError) as err:
            # E.g. every value equal: no variance to apportion. The summary is still worth having.
            log.warning("summary study=%s: no parameter importances: %s", study.study_name, err)
            return {}
        return {k: float(v) for k, v in importance.items() if math.isfinite(v)}


class StudyMirror:
    """An in-memory copy of a study's trials for one ask, kept in step with what the ask writes.

    TPE (with its constant liar, the default) reads every trial of the study at each draw: from
    PostgreSQL that was a query per parameter of every trial asked, most of an ask's time. The copy
    is read once; it holds the same trials under the same numbers, in the same order, so every
    draw sees what it would have read from the database.
    """

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> "StudyMirror | None":
        ordered = sorted(trials, key=lambda t: t.number)
        # The copy numbers its trials 0, 1, ...: the same numbers only if the study's are that too.
        if [t.number for t in ordered] != list(range(len(ordered))):
            return None
        study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="minimize")
        study.add_trials(ordered)
        return cls(study)

    @property
    def next_number(self) -> int:
        return len(self.study.get_trials(deepcopy=False))

    def add(self, trial: FrozenTrial) -> None:
        self.study.add_trial(trial)

    def set_param(self, number: int, param: str, value: Any, dist: BaseDistribution) -> None:
        copy = self.study.get_trials(deepcopy=False)[number]
        self.study._storage.set_trial_param(copy._trial_id, param, dist.to_internal_repr(value), dist)


# ---- Helpers ----


def draw_seed(seed: int, number: int, param: str) -> int:
    """The seed of one draw: a hash of the study's seed, the trial's number and the parameter (not Python's hash(), which is salted per process)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{number}:{param}".encode()).digest()[:4], "big")


def trials_by_key(trials: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The study's trials by key (the first one, should a key ever be there twice)."""
    by_key: dict[str, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        key = t.user_attrs.get(KEY_ATTR)
        if isinstance(key, str):
            by_key.setdefault(key, t)
    return by_key


def number(value: Any) -> bool:
    """A JSON number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def distributions(space: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """The contract's SearchRanges as Optuna distributions, in the order given."""
    if not space:
        raise bad_input("optunaAsk: the search space is empty (no parameter to sample)")
    out: dict[str, BaseDistribution] = {}
    for name, r in space.items():
        where = f"optunaAsk: parameter {name!r}"
        if not isinstance(r, Mapping):
            raise bad_input(f"{where}: a range must be an object, got {r!r}")
        kind = r.get("type")
        try:
            if kind == "int":
                low, high, step = r.get("low"), r.get("high"), 1 if r.get("step") is None else r.get("step")
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step)):
                    raise bad_input(f"{where}: an int range needs integer low, high (and step), got {dict(r)!r}")
                out[name] = IntDistribution(cast(int, low), cast(int, high), step=cast(int, step))
            elif kind == "float":
                low, high, step, log_ = r.get("low"), r.get("high"), r.get("step"), bool(r.get("log")) if r.get("log") is None else r.get("log")
                if not (number(low) and number(high) and (step is None or number(step)) and isinstance(log_, bool)):
                    raise bad_input(f"{where}: a float range needs numbers low, high (and step, log: boolean), got {dict(r)!r}")
                out[name] = FloatDistribution(float(cast(float, low)), float(cast(float, high)), step=None if step is None else float(step), log=log_)
            elif kind == "categorical":
                choices = r.get("choices")
                if not isinstance(choices, list) or not choices or not all(isinstance(c, (str, int, float, bool)) for c in choices):
                    raise bad_input(f"{where}: a categorical range needs a non-empty list of strings, numbers or booleans, got {dict(r)!r}")
                out[name] = CategoricalDistribution(choices)
            else:
                raise bad_input(f"{where}: unknown distribution type {kind!r} (int, float or categorical)")
        except ValueError as err:  # Optuna's own checks: low > high, log with step, ...
            raise bad_input(f"{where}: {err}") from None
    return out


def tell_item(r: Any, i: int) -> TellResultItem:
    """One result of a tell, checked."""
    what = f"optunaTell: results[{i}]"
    key = require(r, "key", str, what)
    num = require(r, "number", int, what)
    state = r.get("state")
    if state not in ("complete", "fail"):
        raise bad_input(f"{what} ({key}): `state` must be 'complete' or 'fail', got {state!r}")
    if state == "complete" and not (number(r.get("value")) and math.isfinite(r["value"])):
        raise bad_input(f"{what} ({key}): a complete trial needs a finite `value`, got {r.get('value')!r}")
    attrs = r.get("attrs") or {}
    if not isinstance(attrs, Mapping):
        raise bad_input(f"{what} ({key}): `attrs` must be an object, got {attrs!r}")
    return cast(TellResultItem, {"key": key, "number": num, "state": state, "value": r.get("value"), "attrs": attrs})


# ---- The worker ----


def activities_of(sampler: Sampler) -> list[Any]:
    """The four activities, under the contract's names, as synchronous functions (Optuna's storage blocks)."""

    @activity.defn(name="optunaCreateStudy")
    def optuna_create_study(req: dict[str, Any]) -> dict[str, Any]:
        return sampler.create_study(cast(StudyRequest, req))

    @activity.defn(name="optunaAsk")
    def optuna_ask(req: dict[str, Any]) -> list[AskedTrial]:
        return sampler.ask(cast(AskRequest, req))

    @activity.defn(name="optunaTell")
    def optuna_tell(req: dict[str, Any]) -> dict[str, int]:
        return sampler.tell(cast(TellRequest, req))

    @activity.defn(name="optunaSummary")
    def optuna_summary(req: dict[str, Any]) -> dict[str, Any]:
        return sampler.summary(cast(SummaryRequest, req))

    return [optuna_create_study, optuna_ask, optuna_tell, optuna_summary]


async def run(args: argparse.Namespace) -> None:
    """Connects, polls until SIGTERM/SIGINT (or stdin's end with --exit-with-stdin), then drains."""
    env = os.environ
    address = env.get("TEMPORAL_ADDRESS") or "localhost:7233"
    namespace = env.get("TEMPORAL_NAMESPACE") or "default"
    task_queue = env.get("OPTUNA_TASK_QUEUE") or "optuna"
    url = storage_url(env)
    sampler = Sampler(url)
    log.info("storage %s", masked(url))
    client = await Client.connect(
        address,
        namespace=namespace,
        api_key=env.get("TEMPORAL_API_KEY") or None,
        tls=tls_config(env) or False,
        data_converter=data_converter(env),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_stdin:
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            activities=activities_of(sampler),
            activity_executor=executor,
            max_concurrent_activities=4,
            graceful_shutdown_timeout=datetime.timedelta(seconds=5),
        )
        async with worker:
            print(f"{READY_PREFIX} " + json.dumps({"pid": os.getpid(), "address": address, "namespace": namespace, "taskQueue": task_queue}), flush=True)
            log.info("polling task queue %s in namespace %s at %s", task_queue, namespace, address)
            await stop.wait()
            log.info("stopping")


class OneLineFormatter(logging.Formatter):
    """One line per record (a traceback's newlines escaped as \\n), so a reader of stderr takes a line for a record."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def quiet_bad_input(record: logging.LogRecord) -> bool:
    """Temporal logs a failed activity with its traceback; for bad input the message says it all."""
    err = record.exc_info[1] if record.exc_info else None
    if isinstance(err, ApplicationError) and err.type == BAD_INPUT:
        record.msg = f"{record.getMessage()}: {err.message}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


def main() -> None:
    """Entry point: `python workers/optuna/worker.py [--exit-with-stdin]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-with-stdin", action="store_true", help="stop when stdin closes (the parent process died)")
    args = parser.parse_args()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(quiet_bad_input)
    logging.basicConfig(handlers=[handler], level=os.environ.get("OPTUNA_WORKER_LOG_LEVEL", "INFO").upper())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
