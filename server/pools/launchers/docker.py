"""The `docker` launcher: `coflux worker` in a container from the pool's `image`, through the
Docker Engine API (the `docker` package), at `dockerHost` or the local socket.

The container runs `python -m coflux worker ...` (the image must have coflux installed; `python`
and `workdir` say which interpreter, and where), with
the pool's `env.*`, `network` (`host` lets it reach a server on 127.0.0.1), `volumes`
({host path: {bind, mode}} or ["host:container[:mode]"]) and `resources` ({cpus, memory}). A stop
is `docker stop` (SIGTERM: the worker drains; SIGKILL after the drain timeout); the container is
removed once its worker has exited and its log tail was read."""

from __future__ import annotations

from typing import Any

from .base import LaunchError, LaunchSpec, tail


def _resources(resources: Any) -> dict:
    if not resources:
        return {}
    if not isinstance(resources, dict):
        raise LaunchError("resources must be an object such as {\"cpus\": 2, \"memory\": \"4g\"}")
    out: dict[str, Any] = {}
    if "cpus" in resources:
        out["nano_cpus"] = int(float(resources["cpus"]) * 1e9)
    if "memory" in resources:
        out["mem_limit"] = str(resources["memory"])
    return out


def container_options(spec: LaunchSpec) -> dict:
    """The `containers.run` keyword arguments for a launch (also what the tests check)."""
    config = spec.config
    options: dict[str, Any] = {
        "image": config["image"],
        "command": [config.get("python") or "python", "-m", "coflux", *spec.worker_args()],
        "environment": spec.worker_env(),
        "name": f"coflux-{spec.launch_id.lower()}",
        "labels": {"coflux.launch": spec.launch_id, "coflux.pool": spec.pool},
        "detach": True,
    }
    if config.get("workdir"):
        options["working_dir"] = config["workdir"]
    if config.get("network"):
        options["network_mode" if config["network"] in ("host", "bridge", "none") else "network"] = config["network"]
    if config.get("volumes"):
        options["volumes"] = config["volumes"]
    options.update(_resources(config.get("resources")))
    return options


class DockerLauncher:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def _client(self, host: str | None) -> Any:
        import docker

        key = host or ""
        if key not in self._clients:
            self._clients[key] = docker.DockerClient(base_url=host) if host else docker.from_env()
        return self._clients[key]

    def _container(self, handle: dict) -> Any:
        import docker.errors

        try:
            return self._client(handle.get("host")).containers.get(handle["container"])
        except docker.errors.NotFound:
            return None

    def start(self, spec: LaunchSpec) -> dict:
        import docker.errors

        host = spec.config.get("dockerHost")
        try:
            client = self._client(host)
            self._ensure_image(client, spec.config["image"])
            container = client.containers.run(**container_options(spec))
        except docker.errors.ImageNotFound:
            raise LaunchError(f"image not found: {spec.config['image']}") from None
        except docker.errors.APIError as exc:
            raise LaunchError(f"docker: {exc.explanation or exc}") from None
        except docker.errors.DockerException as exc:
            raise LaunchError(f"docker: {exc}") from None
        return {"container": container.id, "host": host}

    @staticmethod
    def _ensure_image(client: Any, image: str) -> None:
        """The image, from the engine or else pulled; a missing one is the launch's error."""
        import docker.errors

        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            client.images.pull(image)
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc).splitlines()[0][:200]
            raise LaunchError(f"image not found: {image} (pulling it failed: {reason})") from None

    def alive(self, handle: dict) -> bool:
        container = self._container(handle)
        return container is not None and container.status in ("created", "running", "restarting")

    def wait(self, handle: dict) -> int | None:
        container = self._container(handle)
        if container is None:
            return None
        return int(container.wait().get("StatusCode", -1))

    def stop(self, handle: dict, drain_timeout: float) -> None:
        container = self._container(handle)
        if container is not None:
            container.stop(timeout=int(drain_timeout) + 5)

    def log_tail(self, handle: dict) -> str:
        container = self._container(handle)
        if container is None:
            return ""
        return tail(container.logs(tail=100).decode("utf-8", "replace"))

    def cleanup(self, handle: dict) -> None:
        container = self._container(handle)
        if container is not None:
            container.remove(force=True)
