"""The fake's state in one object: contracts, clock, lifecycle, tasks, journal, videos.

Families (providers/*) translate HTTP into calls on this object and its results back into their
own words; they keep no state of their own. `reset()` forgets every task and journal entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mockserver.catalogue import JobSpec
from mockserver.contracts import ContractSet, load
from mockserver.core.artifacts import Signer, VideoCache, VideoKey
from mockserver.core.clock import Clock
from mockserver.core.config import FIXED_OPTIONS, RULE_TIMINGS, Options
from mockserver.core.ids import key_digest
from mockserver.core.journal import redact_request
from mockserver.core.memo import Memo
from mockserver.core.replay import Replay, ReplayOpener
from mockserver.core.retention import Retention
from mockserver.core.scenarios import FaultRequested, Scenario, shape_plan
from mockserver.core.store import Store, open_store
from mockserver.core.tasks import (
    Failure,
    Lifecycle,
    Plan,
    Snapshot,
    State,
    Task,
    pack_parsed,
    plan_times,
)
from mockserver.core.webhooks import Webhook
from mockserver.errors import MockServerError, Timing, Violation

__all__ = ["FIXED_OPTIONS", "RULE_TIMINGS", "Backend", "Options", "Retention"]


class Backend:
    """All state of one fake. Create it with `Options`; `reset()` returns it to empty.

    The state itself lives in a store (`Options.store`, or `store=` an opened one): the
    Backend only holds the components the store hands it (see `mockserver.core.store`)."""

    def __init__(
        self,
        options: Options | None = None,
        *,
        clock: Clock | None = None,
        contracts: ContractSet | None = None,
        store: Store | None = None,
        open_replay: ReplayOpener | None = None,
    ) -> None:
        self.options = (options or Options()).check()
        opts = self.options
        self.contracts = contracts or load(opts.contracts_dir)
        self.state: Store = store or open_store(opts.store)
        state = self.state
        self.clock: Clock = clock or state.clock(opts.clock)
        self.lifecycle = Lifecycle(
            self.clock, timing=opts.timing, mode=opts.mode,
            queued_polls=opts.queued_polls, running_polls=opts.running_polls,
        )
        self.store = state.tasks()
        self._exact_polls()
        self.journal = state.journal(opts.journal_size)
        self.ids = state.ids(opts.seed)
        self.videos = VideoCache(opts.video_dir)
        self.signer = self._signer(opts.seed)
        # Each family's retention (its contract's x-wanmock-retention) and max_tasks.
        self.retention = Retention.of(self.contracts, self.contracts.contracts, opts.max_tasks)
        # family -> (task, *render_args) -> the webhook body renderer (any worker renders any)
        self._webhook_renderers: dict[str, Callable[..., Any]] = {}
        # family -> the signer of its webhook attempts (core/webhooks.Signer), if it signs
        self.webhook_signers: dict[str, Callable[..., dict[str, str]]] = {}
        self.scenarios = state.scenarios(opts.seed, self._load_into)
        self.webhooks = state.outbox(opts.journal_size)
        self.webhooks.resolve = self._hook_renderer
        self.limiter = state.limiter()
        self.serving = False  # True while a server runs the app's lifespan (webhooks are sent)
        self.open_replay = open_replay
        self.replay: Replay | None = self._replay(opts.replay)
        self._memos: dict[str, Memo[Any, Any]] = {}
        # (family, key, model) -> its tasks that may still be in progress (memory store only)
        self._active: dict[tuple[str, str | None, str], list[Task]] = {}

    def _exact_polls(self) -> None:
        # Poll counts drive tasks in poll-count mode: a shared store counts each one at once.
        self.store.exact_polls = self.options.mode == "polls"

    def _replay(self, path: str | None) -> Replay | None:
        """The recorded jobs of the cassette at `path` (opened by `open_replay`), or None."""
        if not path:
            return None
        if self.open_replay is None:
            raise MockServerError(
                "replay: this fake was built without a cassette reader; build it with "
                "mockserver.create_app, ThreadedMockServer, wanmock serve or the pytest plugin "
                "(or pass open_replay=mockserver.replay.open_replay)")
        return self.open_replay(path)

    def _signer(self, seed: int | None) -> Signer:
        fallback = hashlib.sha256(f"wanmock:{seed}:{id(self)}".encode()).digest()
        return self.state.signer(seed, fallback)  # type: ignore[no-any-return]

    def renders_webhooks(self, family: str, make: Callable[..., Any]) -> None:
        """`make(task, *render_args)` builds the renderer of `family`'s webhooks (the family's
        `webhook_renderer`): any worker of a shared store renders any task's webhook."""
        self._webhook_renderers[family] = make

    def _hook_renderer(self, family: str, task_id: str, args: list[Any]) -> Any:
        """The renderer of a webhook another worker scheduled (see `renders_webhooks`)."""
        make = self._webhook_renderers.get(family)
        task = self.store.get(task_id)
        if make is None or task is None:
            return None
        return make(task, *args)

    def configure(self, options: Options) -> None:
        """Serve with other options from now on, starting empty (every task, journal entry and
        webhook is forgotten, as by `reset()`). `families`, `contracts_dir` and `store` made the
        app's routes and state and cannot change. The shared `wanmock_server` fixture applies
        each test's marker this way and restores the session's options afterwards."""
        new = options.check()
        old = self.options
        for name in FIXED_OPTIONS:
            if getattr(new, name) != getattr(old, name):
                raise MockServerError(
                    f"{name} cannot change on a running fake ({getattr(old, name)!r} -> "
                    f"{getattr(new, name)!r}); start another one (create_app, "
                    "ThreadedMockServer, the `wanmock` fixture)")
        self.options = new
        if new.clock != old.clock or self.clock.kind == "manual":
            self.clock = self.state.clock(new.clock)
            self.clock.restart()  # a fresh fake's clock
        self.lifecycle = Lifecycle(
            self.clock, timing=new.timing, mode=new.mode,
            queued_polls=new.queued_polls, running_polls=new.running_polls,
        )
        self._exact_polls()
        if new.journal_size != old.journal_size:
            self.journal = self.state.journal(new.journal_size)
        if new.video_dir != old.video_dir:
            self.videos = VideoCache(new.video_dir)
        self.signer = self._signer(new.seed)
        self.webhooks.record_only = new.webhooks == "record" or not self.serving
        if new.replay != old.replay:
            self.replay = self._replay(new.replay)
        if new.max_tasks != old.max_tasks:
            self.retention = Retention.of(self.contracts, self.contracts.contracts,
                                          new.max_tasks)
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------
    def _load_into(self, book: Any) -> None:
        source = self.options.scenarios
        if source:
            book.load(source if isinstance(source, str) else list(source))

    def reset(self) -> None:
        """Forget every task, journal entry and added scenario rule; re-seed ids (the rules
        given in the options, e.g. `--scenarios FILE`, are loaded again). On a shared store
        every worker sharing it starts empty at once (the store's epoch moves on)."""
        self.state.reset()
        self.journal.clear()
        self.webhooks.clear()
        self.ids = self.state.ids(self.options.seed)  # seeded ids from the start again
        self.scenarios = self.state.scenarios(self.options.seed, self._load_into)
        self.retention.reset()
        self._active.clear()
        if self.replay is not None:
            self.replay.reset()
        for memo in self._memos.values():  # seeded ids come back: forget what they meant
            memo.clear()

    def memo(self, name: str, size: int = 4096) -> Memo[Any, Any]:
        """This fake's bounded memo `name`, made on first use. The hot paths' caches (header
        sets, poll bodies) live here, never in a module, so two apps in one process never
        share them; `reset()` empties them."""
        found = self._memos.get(name)
        if found is None:
            found = self._memos.setdefault(name, Memo(size))
        return found

    def begin(self, task_id: str | None = None) -> Any:
        """Start a request (a shared store reads epoch, clock and the task in one go)."""
        return self.state.begin(task_id)

    def end(self, token: Any) -> None:
        self.state.end(token)

    def advance(self, seconds: float) -> float:
        """Move the clock forward (a finite, bounded number of seconds: `core/clock`). Under
        `mode="polls"`, where the clock does not move tasks, each unfinished task also moves
        as far along its plan as that much time would move it, in whole polls (so
        `run_until_terminal()` and the control API's advance act there too)."""
        now = self.clock.advance(seconds)
        if self.options.mode == "polls" and seconds > 0:
            life = self.lifecycle
            for task in list(self.tasks()):
                if task.forced is not None or task.canceled_at is not None:
                    continue
                target = life.elapsed(task, now) + seconds
                while (not life.view(task, now).state.terminal
                       and life.elapsed(task, now) < target):
                    self.store.count_poll(task)
        return now

    def now(self) -> float:
        return self.clock.now()

    def flush_webhooks(self) -> list[Webhook]:
        """Render the webhooks whose tasks have ended (see `mockserver.core.webhooks`)."""
        return self.webhooks.flush(self.clock.now())

    def submit(
        self,
        *,
        family: str,
        operation: str,
        spec: JobSpec,
        request: Any,
        task_id: str,
        api_key: str | None = None,
        failure: Violation | None = None,
        extra: dict[str, Any] | None = None,
        scenario: Scenario | None = None,
        raw: bytes | None = None,
        model_concurrency: int | None = None,
    ) -> Task:
        """Create a task. `failure` is a rule the provider reports late: the task will FAIL.
        `scenario` (a job scenario) shapes its plan; the provider's concurrency limit may make
        it wait in the queue or be refused (`FaultRequested("concurrency")`): the
        `max_concurrent_tasks` option per key, and `model_concurrency`, the provider's own
        limit of tasks in progress per key for this model (DashScope's per-model table).
        `raw`, when given, is the text `request` was parsed from (`json.loads(raw)`): the task
        keeps it rather than encoding the body again."""
        api_key = key_digest(api_key)  # kept and compared as a digest, never the key
        request, raw = redact_request(request, raw)  # nor a key sent in a body field
        queue_s, run_s = plan_times(spec, self.options.timing, self.ids)
        plan = Plan(queue_s, run_s)
        if failure is not None:
            plan.failure = Failure(failure.code, failure.message)
            plan.fail_at = 0.1
        now = self.clock.now()
        wait = self._concurrency_wait(family, api_key, now)
        if model_concurrency is not None:
            wait = max(wait, self._model_wait(family, api_key, spec.model, model_concurrency,
                                              now))
        task = Task(
            id=task_id, family=family, operation=operation, spec=spec,
            submitted_at=now, plan=plan,
            request=request if raw is None else pack_parsed(raw, request), api_key=api_key,
            extra=dict(extra or {}),
        )
        replay = self.replay
        recorded = replay.take(family, operation, request) if replay is not None else None
        if replay is not None and recorded is not None:
            # A recorded job: its own plan, whatever the timing, scenario or late rule says.
            replay.apply(recorded, task)
            return self.store.add(task)
        if scenario is not None and failure is None:
            shape_plan(task, scenario, self.contracts[family].extensions.failures)
        # After the scenario: `slow` multiplies the task's own times, not the wait for a slot.
        plan.queue_s += wait
        self.store.add(task)
        if model_concurrency is not None:
            self._active.setdefault((family, api_key, spec.model), []).append(task)
        self.retention.submitted(self.store, self.lifecycle, now)
        return task

    # -- bounded memory (mockserver.core.retention) ----------------------------------------
    def purge_at(self, task: Task) -> float | None:
        """When a task may be forgotten without anyone noticing (`Retention.purge_at`)."""
        return self.retention.purge_at(task)

    def sweep(self, now: float | None = None, *, retention_only: bool = False) -> int:
        """Forget tasks past their retention, then (with `max_tasks`) the oldest ended tasks,
        then, if still over the bound, the oldest unfinished ones. Returns how many went."""
        return self.retention.sweep(self.store, self.lifecycle,
                                    self.clock.now() if now is None else now,
                                    retention_only=retention_only)

    def concurrency_policy(self, family: str) -> str:
        policy = self.options.concurrency_policy
        if policy == "contract":
            policy = self.contracts[family].extensions.limits.concurrency_policy or "queue"
        return policy

    def _concurrency_wait(self, family: str, api_key: str | None, now: float) -> float:
        """Seconds a new task must wait for a slot (or FaultRequested when the family rejects)."""
        limit = self.options.max_concurrent_tasks
        if limit is None:
            return 0.0
        ends = []
        for task in self.store:
            if task.family != family or task.api_key != api_key:
                continue
            snap = self.lifecycle.view(task, now)
            if not snap.state.terminal:
                ends.append(snap.now + snap.eta)
        return self._slot_wait(family, ends, limit, now)

    def _model_wait(self, family: str, api_key: str | None, model: str, limit: int,
                    now: float) -> float:
        """Seconds a new task of `model` waits for one of the key's `limit` slots for that model
        (or FaultRequested when the family rejects). The key's unfinished tasks of the model
        are kept in an index per fake (a submit never walks every task): over a shared store
        each worker counts the tasks submitted through it (decision rate-limits)."""
        bucket_key = (family, api_key, model)
        shared = self.state.shared
        live, ends = [], []
        for task in self._active.get(bucket_key, ()):
            current = task if shared else self.store.get(task.id)
            if current is None:  # forgotten (retention, max_tasks, reset)
                continue
            snap = self.lifecycle.view(current, now)
            if not snap.state.terminal:
                live.append(current)
                ends.append(snap.now + snap.eta)
        self._active[bucket_key] = live
        return self._slot_wait(family, ends, limit, now)

    def _slot_wait(self, family: str, ends: list[float], limit: int, now: float) -> float:
        if len(ends) < limit:
            return 0.0
        if self.concurrency_policy(family) == "reject":
            raise FaultRequested("concurrency")
        ends.sort()
        return max(0.0, ends[len(ends) - limit] - now)

    def admit(self, family: str, api_key: str | None, *, qps: float | None = None,
              bucket: str = "") -> bool:
        """Count a request against a per-key rate limit; False when over it. Without `qps`, the
        `rate_limit_qps` option's limit on every request of the family; with it, the family's
        own limit named `bucket` (DashScope's task APIs, a model's submits)."""
        if qps is None:
            qps = self.options.rate_limit_qps
            if qps is None:
                return True
        key = f"{family}\n{key_digest(api_key) or ''}" + (f"\n{bucket}" if bucket else "")
        return bool(self.limiter.admit(key, self.clock.now(), qps))

    def rule_timing(self) -> Timing | None:
        timing = self.options.rule_timing
        return None if timing == "contract" else timing  # type: ignore[return-value]

    def view(self, task: Task, *, poll: bool = False) -> Snapshot:
        """The task now. `poll=True` counts a client query (poll-count mode advances on it)."""
        if poll:
            self.store.count_poll(task)
        return self.lifecycle.view(task, retention=self.task_retention(task))

    def task_retention(self, task: Task) -> float | None:
        """Seconds after submit when the task reads as expired (None: never)."""
        return self.retention.task_s(task)

    def url_ttl(self, task: Task) -> float:
        """How long the task's result URL is valid after the task ended."""
        return self.retention.url_s(task)

    def cancel(self, task: Task) -> bool:
        """Cancel a queued task; False (nothing changes) once it has started or ended. Under the
        `cancel-race` scenario the cancel is accepted but the task completes anyway."""
        if self.view(task).state is not State.QUEUED:
            return False
        if task.extra.get("cancel_race"):
            return True
        self.store.update(task, canceled_at=self.clock.now())
        return True

    def force(self, task: Task, state: State) -> None:
        """Pin a task to a state from now on (the control API and fixtures use it)."""
        failure = None
        if state is State.FAILED:  # kept with the state (a shared store's record is older)
            failure = task.plan.failure or Failure("InternalError", "Forced failure (wanmock)")
        self.store.update(task, forced=state, forced_at=self.clock.now(), failure=failure)
        self.flush_webhooks()

    # -- results -----------------------------------------------------------------------------
    def video_key(self, task: Task) -> VideoKey:
        spec = task.spec
        tint = int(hashlib.sha256(task.id.encode()).hexdigest()[:2], 16)
        return VideoKey(spec.width, spec.height, spec.duration, spec.audio, tint)

    def video_path(self, task: Task) -> Path:
        return self.videos.path(self.video_key(task))

    def video_url(self, base_url: str, task: Task, snapshot: Snapshot) -> str:
        """The signed result URL; it expires `url_s` after the task ended."""
        ttl = self.url_ttl(task)
        ended = snapshot.ended_at if snapshot.ended_at is not None else snapshot.now
        expires = int(ended + ttl)
        path = f"/_wanmock/videos/{task.id}.mp4"
        return base_url.rstrip("/") + self.signer.sign(path, expires)

    def url_expires_in(self, task: Task, snapshot: Snapshot) -> int:
        ttl = self.url_ttl(task)
        ended = snapshot.ended_at if snapshot.ended_at is not None else snapshot.now
        return max(0, int(ended + ttl - snapshot.now))

    def tasks(self, family: str | None = None) -> Iterable[Task]:
        """Every task (of one family): the control API and fixtures see them all."""
        return (t for t in self.store if family is None or t.family == family)

    def find(self, family: str, task_id: str, api_key: str | None,
             normalize: Callable[[str], str] | None = None) -> Task | None:
        """The task `task_id` as `family` answers it to the caller holding `api_key`: None for
        an id the family never issued (another family's id, e.g. a new-api `task_...` id on
        DashScope) and for another key's task (tasks belong to the key that created them, per
        family; contracts' decision `task-scoping`). `normalize` maps a key to its owner where
        a family treats two spellings as one key (new-api strips `sk-`)."""
        task = self.store.find(family, task_id)
        if task is None or task.family != family:
            return None
        if not self.owns(task, api_key, normalize):
            return None
        return task

    @staticmethod
    def owns(task: Task, api_key: str | None,
             normalize: Callable[[str], str] | None = None) -> bool:
        """Whether the caller with `api_key` owns `task` (a task made without a key is
        everyone's: the in-process fixtures create some that way)."""
        if task.api_key is None or api_key is None:
            return True
        # The task keeps the digest of its key (in the family's form: `submit`'s caller
        # normalized it), so the caller's key is compared the same way.
        return task.api_key == key_digest(normalize(api_key) if normalize else api_key)
