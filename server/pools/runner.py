"""Runs the launchers off the orchestrator's thread, and reports what happens back to it.

The orchestrator's `pools` component decides (launch, stop, re-attach) inside its batch; once
that batch has committed, it hands the decision here. Each launched worker gets a thread of
its own that starts it and waits for it to exit (a worker lives for minutes or hours: a
bounded pool would run out), and a stop runs on a short-lived thread. What happens is
reported with `orchestrator.call(...)`, so it is recorded by the single writer like any
other change: started (with its handle), failed (error and log tail), exited (exit code and
log tail)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .launchers.base import LaunchError, LaunchSpec

log = logging.getLogger("coflux.pools")

Report = Callable[[Callable[[Any], Any]], Any]  # orchestrator.call


def make_launcher(kind: str) -> Any:
    if kind == "process":
        from .launchers.process import ProcessLauncher

        return ProcessLauncher()
    if kind == "docker":
        from .launchers.docker import DockerLauncher

        return DockerLauncher()
    from .launchers.kubernetes import KubernetesLauncher

    return KubernetesLauncher()


class LaunchRunner:
    def __init__(self, allowed: tuple[str, ...], log_dir: str) -> None:
        self.allowed = tuple(allowed)
        self.log_dir = log_dir
        self.report: Report | None = None  # set by the orchestrator when it starts
        self._launchers: dict[str, Any] = {}
        self._watching: set[str] = set()
        self._lock = threading.Lock()

    def launcher(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._launchers:
                self._launchers[kind] = make_launcher(kind)
            return self._launchers[kind]

    def _claim(self, launch_id: str) -> bool:
        with self._lock:
            if launch_id in self._watching:
                return False
            self._watching.add(launch_id)
            return True

    def _release(self, launch_id: str) -> None:
        with self._lock:
            self._watching.discard(launch_id)

    def _tell(self, fn: Callable[[Any], Any]) -> None:
        if self.report is not None:
            try:
                self.report(fn)
            except Exception:  # the orchestrator stopped
                log.debug("could not report a launch change", exc_info=True)

    def _ask(self, fn: Callable[[Any], Any]) -> Any:
        """Report, and wait for the orchestrator's answer (None if it could not be asked)."""
        if self.report is None:
            return None
        try:
            return self.report(fn).result(timeout=60)
        except Exception:
            log.debug("could not report a launch change", exc_info=True)
            return None

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    # ------------------------------------------------------------------ what the component hands over

    def start(self, kind: str, spec: LaunchSpec) -> None:
        if self._claim(spec.launch_id):
            self._thread(f"coflux-launch-{spec.launch_id}", lambda: self._run(kind, spec))

    def reattach(self, launch_id: str, kind: str, handle: dict | None) -> None:
        """After a restart: watch a worker launched before it, or say it is gone. A launch whose
        handle was never recorded is looked for (a process launcher's pid file); if it is not
        found, its connect timeout decides."""
        if not self._claim(launch_id):
            return
        self._thread(f"coflux-launch-{launch_id}", lambda: self._reattach(launch_id, kind, handle))

    def stop(self, kind: str, handle: dict | None, drain_timeout: float) -> None:
        if handle is None:
            return
        launcher = self.launcher(kind)

        def stop() -> None:
            try:
                launcher.stop(handle, drain_timeout)
            except Exception:
                log.warning("stopping %s failed", handle, exc_info=True)
        self._thread("coflux-launch-stop", stop)

    # ------------------------------------------------------------------ on the launch's own thread

    def _run(self, kind: str, spec: LaunchSpec) -> None:
        launch_id = spec.launch_id
        launcher = self.launcher(kind)
        try:
            handle = launcher.start(spec)
        except Exception as exc:
            if not isinstance(exc, LaunchError):
                log.exception("launch %s failed", launch_id)
            error = str(exc) if isinstance(exc, LaunchError) else f"{exc.__class__.__name__}: {exc}"
            self._release(launch_id)
            self._tell(lambda o: o.pools.launch_failed(launch_id, error, ""))
            return
        if not self._ask(lambda o: o.pools.launch_started(launch_id, handle)):
            self._abandon(launch_id, launcher, handle)  # the launch ended meanwhile (its connect timeout)
            return
        self._watch(launch_id, launcher, handle)

    def _abandon(self, launch_id: str, launcher: Any, handle: dict) -> None:
        try:
            launcher.stop(handle, 0.0)
        except Exception:
            log.debug("stopping %s failed", handle, exc_info=True)
        self._cleanup(launcher, handle)
        self._release(launch_id)

    def _reattach(self, launch_id: str, kind: str, handle: dict | None) -> None:
        launcher = self.launcher(kind)
        if handle is None:
            found = getattr(launcher, "find", None)
            handle = found(launch_id, self.log_dir) if found is not None else None
            if handle is None:
                self._release(launch_id)
                return
            if not self._ask(lambda o: o.pools.launch_started(launch_id, handle)):
                self._abandon(launch_id, launcher, handle)
                return
        try:
            alive = launcher.alive(handle)
        except Exception:
            alive = False
        if not alive:
            tail = self._tail(launcher, handle)
            self._cleanup(launcher, handle)
            self._release(launch_id)
            self._tell(lambda o: o.pools.launch_exited(launch_id, None, tail, lost=True))
            return
        self._watch(launch_id, launcher, handle)

    def _watch(self, launch_id: str, launcher: Any, handle: dict) -> None:
        try:
            code = launcher.wait(handle)
        except Exception as exc:
            log.warning("watching launch %s failed: %s", launch_id, exc)
            code = None
        tail = self._tail(launcher, handle)
        self._cleanup(launcher, handle)
        self._release(launch_id)
        self._tell(lambda o: o.pools.launch_exited(launch_id, code, tail))

    @staticmethod
    def _tail(launcher: Any, handle: dict) -> str:
        try:
            return launcher.log_tail(handle)
        except Exception:
            return ""

    @staticmethod
    def _cleanup(launcher: Any, handle: dict) -> None:
        try:
            launcher.cleanup(handle)
        except Exception:
            log.debug("cleanup of %s failed", handle, exc_info=True)
