"""``dialer-gateway serve`` with ``[service] workers`` > 1: one supervisor, N workers.

The supervisor decides no call. It binds the FastAGI port once (``worker_socket =
"shared"``: the workers inherit the listening socket; ``"reuseport"``: it only holds
the port and each worker binds its own SO_REUSEPORT socket), starts the workers
(:mod:`gateway.worker_main`), and owns everything that must exist once per instance:

- signals: SIGTERM/SIGINT drain every worker (each finishes its calls in flight) and
  exit 0; SIGHUP reloads (validated once here, then applied by every worker; the
  result of every worker is reported and logged);
- the ops endpoint: ``/metrics`` aggregates the workers' values (prometheus-client
  multiprocess mode, files in a private temporary directory made at start and removed
  at stop), ``/healthz``, ``/readyz`` (ready when every worker is), ``POST /-/reload``;
- restarts: a worker that dies is started again after a backoff, counted in
  ``dialer_gateway_worker_restarts_total`` and logged;
- systemd: READY=1 once every worker is ready, RELOADING/READY around a reload,
  STOPPING at shutdown (the workers never notify: NotifyAccess=main holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import mark_process_dead

from gateway.clock import utc_now
from gateway.config import Config, parse_hostport
from gateway.health import prepare_audit_sink
from gateway.http import OpsHttpServer
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.multiproc import MULTIPROC_ENV, Exposition
from gateway.reload import ReloadError, ReloadResult, config_digest, effective_config, prepare
from gateway.sdnotify import Notifier
from gateway.service import default_instance_id
from gateway.wiring import build_policy
from gateway.workers import (
    decode_json,
    encode_config,
    encode_json,
    listening_socket,
    read_frame,
    resolve_workers,
    worker_audit,
)

log = structlog.get_logger(__name__)

WORKER_START_TIMEOUT_S = 30.0  # spawn to "ready" (imports, store probe, listeners)
RESTART_BACKOFF_S = 0.5  # first restart delay; doubles per quick death
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a worker that lived this long resets the backoff
READY_ASK_TIMEOUT_S = 2.0  # /readyz: per-worker answer (its store PING takes <= 0.5 s)
RELOAD_TIMEOUT_S = 20.0  # per-worker reload (file reads and validation)
HANG_TICK_S = 5.0  # [service] worker_hang_s: how often a quiet worker is asked for a sign
STOP_MARGIN_S = 10.0  # beyond agi.shutdown_grace_s + 2 x cancel_deadline_s: audit, store


def inherit_only(keep: tuple[int, ...]) -> None:
    """Make every descriptor of this process above stderr, but ``keep``, close-on-exec.

    A worker gets its control socket and the listening socket, nothing else. On asyncio's
    loop ``create_subprocess_exec`` closes the rest in the child (``close_fds``); uvloop
    does not implement ``close_fds``: every descriptor the supervisor holds inheritable
    (those its launcher left it: a lock a wrapper holds with flock, a pipe a parent waits
    on for EOF) would be held by every worker too, past the supervisor's own exit."""
    listing = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    for fd in [int(name) for name in os.listdir(listing)]:
        if fd <= 2 or fd in keep:
            continue
        try:
            if os.get_inheritable(fd):
                os.set_inheritable(fd, False)
        except OSError:  # not open (the listing's own descriptor, closed since)
            continue


def interpreter_options() -> list[str]:
    """This interpreter's command-line options, for a worker to run as the supervisor does
    (what ``multiprocessing``'s spawn passes on): ``-I`` (or ``-E`` and ``-s``), ``-S``,
    ``-O``, ``-B``, ``-b``, every ``-W`` and ``-X``. Without them a supervisor started
    with ``-I`` or ``-s`` would have workers that import from the user's site-packages
    (``~/.local``: the unit's ``WorkingDirectory``, its home) and, with ``-E``, from a
    ``PYTHONPATH`` the supervisor ignored."""
    flags = sys.flags
    options = ["-" + "O" * flags.optimize] if flags.optimize else []
    options += [opt for on, opt in ((flags.dont_write_bytecode, "-B"),
                                    (flags.no_site, "-S")) if on]
    if flags.bytes_warning:
        options.append("-" + "b" * flags.bytes_warning)
    if flags.isolated:
        options.append("-I")
    else:
        options += [opt for on, opt in ((flags.ignore_environment, "-E"),
                                        (flags.no_user_site, "-s")) if on]
    options += [f"-W{w}" for w in sys.warnoptions]
    options += [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sys._xoptions.items()]
    return options


def worker_command() -> tuple[list[str], str | None]:
    """(the interpreter's argv prefix of a worker, a ``PYTHONPATH`` entry to put first or
    ``None``): the worker runs this supervisor's ``gateway`` package and nothing else.

    ``python -m`` puts the working directory first on ``sys.path``, before the standard
    library and the installed packages: a worker started from a directory holding a
    ``gateway/`` folder (an older checkout) or a ``json.py``/``socket.py`` (dropped in
    the service's state directory, its systemd ``WorkingDirectory``) would run that code
    instead. ``-P`` (Python 3.11+) leaves the directory out. The one case that needs it,
    a supervisor itself started as ``python -m gateway`` from a source tree that is not
    installed, gets that tree, and only it, through ``PYTHONPATH`` (so without ``-E``,
    which would ignore it: the worker then reads the environment, as it always did).
    The supervisor's own options are passed on (:func:`interpreter_options`)."""
    import gateway

    root = os.path.dirname(os.path.dirname(os.path.realpath(gateway.__file__)))
    first = sys.path[0] if sys.path and not sys.flags.safe_path else None
    same = first is not None and os.path.realpath(first or os.curdir) == root
    options = [o for o in interpreter_options() if not (same and o == "-E")]
    return ([sys.executable, *options, "-P", "-m", "gateway.worker_main"],
            (root if same else None))


class WorkerProc:
    """One worker process and its control channel, as the supervisor sees it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.started_at = 0.0
        self.last_heard = 0.0  # monotonic time of the last frame read from the worker
        self.asked_at = 0.0  # the hang watch's question, open while later than last_heard
        self.kill_at = 0.0  # not ready and still running then: killed (0: no deadline)
        self.config_hash: str | None = None  # what the worker last said it runs
        self.quick_deaths = 0  # deaths in a row, each before STABLE_AFTER_S
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class Supervisor:
    def __init__(self, config: Config, *, notifier: Notifier | None = None,
                 count: int | None = None) -> None:
        self.config = config
        self.count = count or resolve_workers(config)
        self.notifier = notifier or Notifier()
        self.base_instance = config.service.instance_id or default_instance_id()
        self.metrics = Metrics(config.campaigns)
        r = self.metrics.registry
        self.workers_up = Gauge("dialer_gateway_workers", "Worker processes by state",
                                ["state"], registry=r)
        self.restarts = Counter("dialer_gateway_worker_restarts",
                                "Worker processes restarted after they died", registry=r)
        self.config_hash = config_digest(config, build_policy(config))
        self.metrics.config_loaded(self.config_hash, utc_now(), restart_pending=False)
        self.workers = [WorkerProc(i) for i in range(self.count)]
        self.stopping = False
        self.all_ready = asyncio.Event()
        self.failed_start: int | None = None  # exit code of a worker that died starting
        self._dir = ""
        self._listen: socket.socket | None = None
        self._ids = iter(range(1, 1 << 62))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        # the reload waiting for the lock, not begun: later requests share it (it reads the
        # file after them), so a burst of SIGHUPs or POSTs is one reload, not a queue
        self._next_reload: asyncio.Task[tuple[bool, dict[str, Any]]] | None = None
        self.http: OpsHttpServer | None = None
        self._registry = CollectorRegistry(auto_describe=False)

    # --- start / stop ----------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        for index in range(self.count):  # no proof, no call: exit 4 before anything runs
            await asyncio.to_thread(prepare_audit_sink, worker_audit(cfg.audit, index))
        self._dir = tempfile.mkdtemp(prefix="dialer-gateway-metrics-")  # fresh, private
        self._registry.register(Exposition(self.metrics.registry, self._dir))
        host, port = parse_hostport(cfg.agi.listen, key="agi.listen")
        reuse = cfg.service.worker_socket == "reuseport"
        self._listen = listening_socket(host, port, backlog=cfg.agi.settings.backlog,
                                        reuse_port=reuse)
        self.agi_address = self._listen.getsockname()[:2]
        self.http = OpsHttpServer(render_metrics=self.render, metrics_content_type=CONTENT_TYPE,
                                  ready=self.ready, reload=self.reload_response)
        h_host, h_port = parse_hostport(cfg.http.listen, key="http.listen")
        await self.http.start(h_host, h_port)
        for w in self.workers:
            await self._spawn(w)
        self._gauges()
        log.info("supervisor.started", workers=self.count, agi=f"{host}:{self.agi_address[1]}",
                 worker_socket=cfg.service.worker_socket, http=cfg.http.listen,
                 config_hash=self.config_hash, instance=self.base_instance)

    async def wait_ready(self) -> bool:
        """True once every worker said ready; False when one died or took too long."""
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT_S):
                for w in self.workers:
                    while not w.ready.is_set():
                        if self.failed_start is not None:
                            return False
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(0.2):
                                await w.ready.wait()
        except TimeoutError:
            log.error("supervisor.start_timeout", timeout_s=WORKER_START_TIMEOUT_S)
            return False
        self.all_ready.set()
        self._task(self._watch_hangs(), "hang-watch")
        return True

    async def _watch_hangs(self) -> None:
        """Kill (then restart, like any worker that died) a ready worker that left a
        question of the supervisor unanswered, and sent nothing else, for
        ``service.worker_hang_s``: its event loop is blocked or the process stopped, so
        it neither decides the calls it accepted nor answers /readyz or a reload, and only
        SIGKILL ends it. A worker quiet for a tick is asked "ready" (one question open at
        a time); any frame back, however late, counts as a sign of life.

        Silence is counted from the question, not from the last frame: a worker is not
        asked while the supervisor itself does not run (the whole service frozen by
        ``docker pause`` or ``systemctl freeze``, the supervisor stopped), and a tick that
        comes that late gives the questions open a fresh ``worker_hang_s`` (before, every
        worker was killed at the thaw)."""
        last = time.monotonic()
        while not self.stopping:
            hang_s = self.config.service.worker_hang_s  # reloadable
            tick = min(HANG_TICK_S, hang_s / 3) if hang_s > 0 else HANG_TICK_S
            await asyncio.sleep(tick)
            now = time.monotonic()
            stalled = now - last > 2 * tick  # this loop did not run: no question was asked
            last = now
            self._kill_overdue(now)
            if hang_s <= 0:
                continue
            for w in self.workers:
                if (w.proc is None or w.proc.returncode is not None or not w.ready.is_set()
                        or self.stopping):
                    continue
                if w.asked_at <= w.last_heard:  # no question open
                    if now - w.last_heard >= tick:
                        w.asked_at = now
                        self._task(self._request(w, "ready", hang_s + tick),
                                   f"worker-{w.index}-alive")
                elif stalled:
                    w.asked_at = now
                elif now - w.asked_at >= hang_s:
                    log.error("supervisor.worker_hung", worker=w.index, pid=w.pid,
                              silent_s=round(now - w.last_heard, 1), worker_hang_s=hang_s)
                    self._take_out(w, signal.SIGKILL)

    def _kill_overdue(self, now: float) -> None:
        """SIGKILL a worker that is not ready and still runs past its deadline: restarted,
        it never said ready (stopped, stuck starting); told to drain (its control channel
        out of step), it did not exit. Neither is watched for hangs (not ready), so
        before this nothing ended them: the instance ran one worker short for good."""
        for w in self.workers:
            if (w.kill_at and now >= w.kill_at and not w.ready.is_set() and not self.stopping
                    and w.proc is not None and w.proc.returncode is None):
                log.error("supervisor.worker_overdue", worker=w.index, pid=w.pid,
                          overdue_s=round(now - w.kill_at, 1))
                w.kill_at = 0.0
                self._take_out(w, signal.SIGKILL)

    def _take_out(self, w: WorkerProc, sig: signal.Signals) -> None:
        """Not ready from now (no /readyz or reload waits on it), then ``sig`` to its
        process: SIGTERM drains its calls, SIGKILL ends a worker that cannot. _watch
        restarts it once it has exited."""
        w.ready.clear()
        self._gauges()
        if w.proc is not None and w.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(sig)

    def drain_deadline_s(self) -> float:
        """How long a worker told to stop may take: its calls, the audit, the store."""
        settings = self.config.agi.settings
        return settings.shutdown_grace_s + 2 * settings.cancel_deadline_s + STOP_MARGIN_S

    async def stop(self) -> None:
        """Drain every worker (SIGTERM: stop accepting, finish calls in flight), then
        remove the metrics directory."""
        self.stopping = True
        if self._listen is not None:
            self._listen.close()  # the workers hold their own copies until they drain
        deadline = self.drain_deadline_s()
        live = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for w in live:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]  # live: not None
        log.info("supervisor.draining", workers=[w.pid for w in live], deadline_s=deadline)
        waits = [asyncio.create_task(w.proc.wait()) for w in live]  # type: ignore[union-attr]
        if waits:
            _, stuck = await asyncio.wait(waits, timeout=deadline)
            for w in live:
                if w.proc is not None and w.proc.returncode is None:
                    log.error("supervisor.worker_killed", worker=w.index, pid=w.pid)
                    with contextlib.suppress(ProcessLookupError):
                        w.proc.kill()
            if stuck:
                await asyncio.wait(stuck, timeout=STOP_MARGIN_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        log.info("supervisor.stopped")

    # --- workers -----------------------------------------------------------------------

    async def _spawn(self, w: WorkerProc) -> None:
        assert self._listen is not None  # noqa: S101 - start() binds it first
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        shared = self.config.service.worker_socket == "shared"
        fds = (child.fileno(), self._listen.fileno()) if shared else (child.fileno(),)
        command, source_tree = worker_command()
        argv = [*command, "--index", str(w.index),
                "--count", str(self.count), "--control-fd", str(child.fileno()),
                "--base-instance", self.base_instance,
                "--event-loop", self.config.service.event_loop]
        if shared:
            argv += ["--listen-fd", str(self._listen.fileno())]
        else:
            argv += ["--listen-port", str(self.agi_address[1])]
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env[MULTIPROC_ENV] = self._dir
        if source_tree is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (source_tree, env.get("PYTHONPATH", "")) if p)
        inherit_only(fds)
        try:
            w.proc = await asyncio.create_subprocess_exec(*argv, pass_fds=fds, env=env)
        finally:
            child.close()
        w.ready.clear()
        w.started_at = w.last_heard = time.monotonic()
        w.kill_at = w.started_at + WORKER_START_TIMEOUT_S
        reader, w.writer = await asyncio.open_unix_connection(sock=parent)
        w.writer.write(encode_config(self.config))
        self._task(self._read(w, reader), f"worker-{w.index}-control")
        self._task(self._watch(w, w.proc), f"worker-{w.index}-watch")
        log.info("supervisor.worker_started", worker=w.index, pid=w.pid)

    def _task(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, w: WorkerProc, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = decode_json(await read_frame(reader))
                w.last_heard = time.monotonic()
                if "config_hash" in message:  # a late reply too: the worker applied it
                    w.config_hash = str(message["config_hash"])
                if message.get("type") == "ready":
                    log.info("supervisor.worker_ready", worker=w.index, pid=message.get("pid"),
                             store_ok=message.get("ok"), config_hash=w.config_hash)
                    w.ready.set()
                    w.kill_at = 0.0
                    self._gauges()
                    self._task(self._catch_up(w), f"worker-{w.index}-catch-up")
                elif message.get("type") == "reply":
                    fut = w.pending.pop(int(message.get("id", 0)), None)
                    if fut is not None and not fut.done():
                        fut.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker exited: _watch handles it
        except (ValueError, TypeError) as exc:
            # Out of step (an over-long or malformed frame): nothing more can be read from
            # this worker, so it could never again answer /readyz or a reload. Not ready
            # from now; it drains its calls and exits (SIGTERM), and _watch restarts it.
            log.error("supervisor.control_error", worker=w.index, pid=w.pid, error=str(exc))
            w.kill_at = time.monotonic() + self.drain_deadline_s()  # if it ignores SIGTERM
            self._take_out(w, signal.SIGTERM)

    async def _watch(self, w: WorkerProc, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        mark_process_dead(proc.pid, self._dir)  # type: ignore[no-untyped-call]  # drop its live* gauges
        if w.writer is not None:
            w.writer.close()
        for fut in w.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"worker {w.index} exited"))
        w.pending.clear()
        w.ready.clear()
        self._gauges()
        if self.stopping:
            log.info("supervisor.worker_exited", worker=w.index, pid=proc.pid, code=code)
            return
        if not self.all_ready.is_set():
            log.error("supervisor.worker_failed_to_start", worker=w.index, pid=proc.pid,
                      code=code)
            self.failed_start = code if code and code > 0 else 1
            return
        lived = time.monotonic() - w.started_at
        w.quick_deaths = 0 if lived >= STABLE_AFTER_S else w.quick_deaths + 1
        delay = min(RESTART_BACKOFF_MAX_S,
                    RESTART_BACKOFF_S * (2 ** max(0, w.quick_deaths - 1)))
        log.error("supervisor.worker_died", worker=w.index, pid=proc.pid, code=code,
                  lived_s=round(lived, 3), restart_in_s=delay)
        self.restarts.inc()
        await asyncio.sleep(delay)
        if not self.stopping:
            try:
                await self._spawn(w)
            except OSError as exc:  # fork/exec refused (limits): try again, later
                log.error("supervisor.restart_failed", worker=w.index, error=str(exc))
                self._task(self._watch(w, proc), f"worker-{w.index}-watch")

    async def _catch_up(self, w: WorkerProc) -> None:
        """A worker that started with an older configuration than the one in force (it
        was spawned, or became ready, while a reload ran: that reload did not ask it)
        reloads once that reload is over."""
        async with self._reload_lock:
            if not w.ready.is_set() or w.config_hash == self.config_hash:
                return
            answer = await self._request(w, "reload", RELOAD_TIMEOUT_S)
            caught_up = w.config_hash == self.config_hash
            (log.info if caught_up else log.error)(
                "supervisor.worker_caught_up" if caught_up else "supervisor.worker_behind",
                worker=w.index, pid=w.pid, config_hash=w.config_hash,
                in_force=self.config_hash, error=answer.get("error"))

    async def _request(self, w: WorkerProc, kind: str, timeout_s: float) -> dict[str, Any]:
        """Ask one worker; its reply, or ``{"ok": False, "error": ...}``."""
        if w.writer is None or not w.ready.is_set():
            return {"ok": False, "error": "worker not running", "pid": w.pid}
        if w.writer.is_closing():  # died, its channel reset: uvloop's write() would raise
            return {"ok": False, "error": "no answer: control channel closed", "pid": w.pid}
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        w.pending[rid] = fut
        try:
            w.writer.write(encode_json({"type": kind, "id": rid}))
            async with asyncio.timeout(timeout_s):
                await w.writer.drain()
                return await fut
        except (TimeoutError, ConnectionError) as exc:
            return {"ok": False, "error": f"no answer: {type(exc).__name__}", "pid": w.pid}
        finally:
            w.pending.pop(rid, None)

    def audit_files(self) -> list[str] | str:
        """Where the workers' audit goes (logs): their JSONL files, or the sink kind."""
        audit = self.config.audit
        if audit.sink != "jsonl":
            return audit.sink
        return [os.path.abspath(worker_audit(audit, i).path) for i in range(self.count)]

    def _gauges(self) -> None:
        ready = sum(1 for w in self.workers if w.ready.is_set())
        self.workers_up.labels("configured").set(self.count)
        self.workers_up.labels("ready").set(ready)

    # --- ops endpoint ------------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self._registry)

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        answers = await asyncio.gather(
            *(self._request(w, "ready", READY_ASK_TIMEOUT_S) for w in self.workers))
        if not self._reload_lock.locked():  # (mid-reload, workers move one by one)
            answers = [a if not a.get("ok") or w.config_hash == self.config_hash else
                       {**a, "ok": False, "error": f"runs config {w.config_hash}, the "
                        f"instance's is {self.config_hash}: reload again"}
                       for w, a in zip(self.workers, answers, strict=True)]
        workers = [{"index": w.index, "pid": a.get("pid"), "ready": bool(a.get("ok")),
                    **({"error": a["error"]} if "error" in a else {})}
                   for w, a in zip(self.workers, answers, strict=True)]
        first = answers[0].get("details") or {}
        details: dict[str, Any] = {"packs": first.get("packs", 0), "workers": workers}
        for part in ("store", "audit"):  # the first problem any worker reports
            seen = [(a.get("details") or {}).get(part) for a in answers]
            details[part] = (next((s for s in seen if s != "up"), "up")
                             if None not in seen else "unknown: a worker did not answer")
        if "ami" in first:
            details["ami"] = first["ami"]
        return all(w["ready"] for w in workers), details

    # --- reload -------------------------------------------------------------------------

    async def reload(self) -> tuple[bool, dict[str, Any]]:
        """Validate once; then every worker reloads; the result of each is reported.

        Requests made while another reload runs wait for it, then share one reload that
        reads the configuration after all of them (before, each queued its own: 20
        SIGHUPs 50 ms apart were 20 reloads one after another, 37 s, and a POST
        /-/reload sent meanwhile waited 35 s). Refused once the supervisor is stopping:
        systemd was told STOPPING=1, a reload would tell it RELOADING=1 then READY=1."""
        if self.stopping:
            return self._refused_stopping()
        if self._next_reload is None or self._next_reload.done():
            self._next_reload = task = asyncio.create_task(self._reload_in_turn(),
                                                           name="reload")
            self._tasks.add(task)  # cancelled at stop like the supervisor's other tasks
            task.add_done_callback(self._tasks.discard)
        # shielded: a caller that gives up (an HTTP client gone) does not cancel the
        # reload others wait for
        return await asyncio.shield(self._next_reload)

    async def _reload_in_turn(self) -> tuple[bool, dict[str, Any]]:
        async with self._reload_lock:
            self._next_reload = None  # begun: a request from now on needs a later read
            if self.stopping:  # the stop began while this reload waited for its turn
                return self._refused_stopping()
            self.notifier.reloading()
            ok, doc = await self._reload()
            status = f"serving: {self.count} workers, config {self.config_hash}"
            if not ok:
                status += f"; last reload FAILED: {doc.get('error')}"
            self.notifier.ready(status)
            return ok, doc

    def _refused_stopping(self) -> tuple[bool, dict[str, Any]]:
        log.warning("supervisor.reload_refused", reason="stopping")
        refused = ReloadResult(ok=False, digest=self.config_hash,
                               error="the gateway is stopping: nothing reloaded",
                               campaigns=tuple(sorted(self.config.campaigns)))
        return False, {**refused.to_dict(), "workers": []}

    async def _reload(self) -> tuple[bool, dict[str, Any]]:
        running = self.config
        try:
            prepared = await prepare(running.source, build_policy)
        except ReloadError as exc:
            self.metrics.config_reloads.labels("error").inc()
            log.error("config.reload_failed", source=running.source, error=str(exc),
                      config_hash=self.config_hash)
            refused = ReloadResult(ok=False, digest=self.config_hash, error=str(exc),
                                   campaigns=tuple(sorted(running.campaigns)))
            return False, {**refused.to_dict(), "workers": []}
        # A worker being restarted is not asked: it starts with the configuration in force
        # after this reload, or reloads as soon as it is ready (_catch_up).
        running_workers = [w for w in self.workers if w.ready.is_set()]
        answers = await asyncio.gather(
            *(self._request(w, "reload", RELOAD_TIMEOUT_S) for w in running_workers))
        replies = {w.index: {k: v for k, v in a.items() if k not in ("type", "id")}
                   for w, a in zip(running_workers, answers, strict=True)}
        per_worker = [{"index": w.index, **replies.get(
            w.index, {"ok": True, "result": "restarting", "pid": None})} for w in self.workers]
        hashes = {a.get("config_hash") for a in answers if a.get("ok")}
        ok = bool(answers) and all(a.get("ok") for a in answers) and len(hashes) == 1
        first = next((a for a in answers if a.get("ok")),
                     answers[0] if answers else {"error": "no worker is running"})
        doc = {k: v for k, v in first.items() if k not in ("type", "id", "pid", "ok")}
        doc.setdefault("error", None)
        if ok:
            self.config = effective_config(running, prepared.config)
            self.config_hash = str(first["config_hash"])
            self.metrics.set_campaigns(self.config.campaigns)
            self.metrics.config_loaded(self.config_hash, utc_now(),
                                       restart_pending=bool(first.get("restart_needed")))
            self.metrics.config_reloads.labels("success").inc()
        else:
            self.metrics.config_reloads.labels("error").inc()
            failed = [f"worker {p['index']}: {p.get('error')}" for p in per_worker
                      if not p.get("ok")]
            doc["result"] = "error"
            doc["error"] = "; ".join(failed) or "workers disagree on the configuration hash"
        (log.info if ok else log.error)(
            "supervisor.reloaded" if ok else "supervisor.reload_failed",
            config_hash=self.config_hash, workers=per_worker)
        return ok, {**doc, "workers": per_worker}

    async def reload_response(self) -> tuple[bool, dict[str, Any]]:
        return await self.reload()


async def run(config: Config) -> int:
    """``dialer-gateway serve`` with workers: exit 0 after a graceful stop; the exit code
    of a worker that could not start (2: configuration) otherwise."""
    sup = Supervisor(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[Any]] = set()

    def on_hup() -> None:
        log.info("gateway.reload_requested", signal="SIGHUP")
        task = asyncio.create_task(_reload_when_ready(sup), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await sup.start()
    try:
        waiter = asyncio.create_task(stop.wait())
        starting = asyncio.create_task(sup.wait_ready())
        await asyncio.wait({waiter, starting}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and not starting.result():
            waiter.cancel()
            return sup.failed_start or 1
        if not stop.is_set():
            sup.notifier.ready(f"serving: {sup.count} workers, "
                               f"{len(config.campaigns)} campaigns, config {sup.config_hash}")
            log.info("supervisor.ready", workers=sup.count, pids=[w.pid for w in sup.workers],
                     agi=f"{sup.agi_address[0]}:{sup.agi_address[1]}",
                     http="{}:{}".format(*sup.http.address) if sup.http else None,
                     audit=sup.audit_files())
        await waiter
        starting.cancel()
        sup.notifier.stopping()
        return 0
    finally:
        for task in list(reloads):
            task.cancel()
        await sup.stop()


async def _reload_when_ready(sup: Supervisor) -> None:
    await sup.all_ready.wait()
    await sup.reload()
