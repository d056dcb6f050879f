"""The `kubernetes` launcher: a Job per launch, through the official `kubernetes` client.

In-cluster configuration when the server runs in a cluster, else `apiServer` + `token`
(+ `caCert` or `insecure`). The Job runs `python -m coflux worker ...` from the pool's `image`
with its `namespace`, `serviceAccount`, `resources`, `nodeSelector`, `tolerations`, `env.*` and
`activeDeadlineSeconds`; the launch credential goes in the pod's environment. An API error is the
launch's error. Not yet run against a live cluster (README): the Job it builds is tested."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from .base import LaunchError, LaunchSpec, tail


def build_job(spec: LaunchSpec) -> Any:
    """The V1Job for a launch, made of the client's typed models."""
    from kubernetes import client as k8s

    config = spec.config
    env = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(spec.worker_env().items())]
    resources = config.get("resources") or {}
    container = k8s.V1Container(
        name="worker", image=config["image"], command=["python", "-m", "coflux", *spec.worker_args()], env=env,
        image_pull_policy=config.get("imagePullPolicy"),
        resources=k8s.V1ResourceRequirements(requests=resources.get("requests"), limits=resources.get("limits"))
        if resources else None,
        volume_mounts=[k8s.V1VolumeMount(**m) for m in config.get("volumeMounts") or []] or None)
    tolerations = [k8s.V1Toleration(**t) for t in config.get("tolerations") or []] or None
    labels = {"coflux.launch": spec.launch_id.lower(), "coflux.pool": spec.pool, **(config.get("labels") or {})}
    pod = k8s.V1PodSpec(
        containers=[container], restart_policy="Never", service_account_name=config.get("serviceAccount"),
        node_selector=config.get("nodeSelector"), tolerations=tolerations,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in config.get("imagePullSecrets") or []] or None,
        host_aliases=[k8s.V1HostAlias(**h) for h in config.get("hostAliases") or []] or None,
        volumes=config.get("volumes"))
    return k8s.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k8s.V1ObjectMeta(name=f"coflux-{spec.launch_id.lower()}", labels=labels,
                                  annotations=config.get("annotations")),
        spec=k8s.V1JobSpec(
            backoff_limit=0, active_deadline_seconds=config.get("activeDeadlineSeconds"),
            ttl_seconds_after_finished=600,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod)))


def api_client(config: dict) -> Any:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    if not config.get("apiServer"):
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException as exc:
            raise LaunchError(f"kubernetes: not in a cluster and no apiServer set ({exc})") from None
        return k8s.ApiClient()
    configuration = k8s.Configuration()
    configuration.host = config["apiServer"]
    if config.get("token"):
        configuration.api_key = {"authorization": f"Bearer {config['token']}"}
    if config.get("insecure"):
        configuration.verify_ssl = False
    elif config.get("caCert"):
        with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as f:
            f.write(config["caCert"])
        configuration.ssl_ca_cert = f.name
    return k8s.ApiClient(configuration)


def _api_error(exc: Exception) -> LaunchError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or exc
    body = getattr(exc, "body", None)
    detail = ""
    if body:
        try:
            import json

            detail = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            detail = str(body)[:300]
    return LaunchError(f"kubernetes: {status or ''} {reason}{': ' + detail if detail else ''}".replace("  ", " "))


class KubernetesLauncher:
    def __init__(self) -> None:
        self._configs: dict[str, dict] = {}  # launch id -> the pool config it was started with

    def _config(self, handle: dict) -> dict:
        return self._configs.get(handle.get("launch", "")) or handle.get("config") or {}

    def _batch(self, config: dict) -> Any:
        from kubernetes import client as k8s

        return k8s.BatchV1Api(api_client(config))

    def start(self, spec: LaunchSpec) -> dict:
        from kubernetes.client.exceptions import ApiException

        namespace = spec.config.get("namespace", "default")
        job = build_job(spec)
        try:
            self._batch(spec.config).create_namespaced_job(namespace, job)
        except ApiException as exc:
            raise _api_error(exc) from None
        except Exception as exc:  # urllib3: the API server out of reach
            raise LaunchError(f"kubernetes: cannot reach the API server: {exc}") from None
        self._configs[spec.launch_id] = spec.config
        return {"job": job.metadata.name, "namespace": namespace, "launch": spec.launch_id}

    def _job(self, handle: dict) -> Any:
        from kubernetes.client.exceptions import ApiException

        config = self._config(handle)
        try:
            return self._batch(config).read_namespaced_job_status(handle["job"], handle["namespace"])
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc) from None

    def alive(self, handle: dict) -> bool:
        job = self._job(handle)
        return job is not None and not (job.status.succeeded or job.status.failed)

    def wait(self, handle: dict) -> int | None:
        while True:
            job = self._job(handle)
            if job is None:
                return None
            if job.status.succeeded:
                return 0
            if job.status.failed:
                return 1
            time.sleep(2.0)

    def stop(self, handle: dict, drain_timeout: float) -> None:
        from kubernetes import client as k8s

        config = self._config(handle)
        self._batch(config).delete_namespaced_job(
            handle["job"], handle["namespace"],
            body=k8s.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=int(drain_timeout) + 5))

    def log_tail(self, handle: dict) -> str:
        from kubernetes import client as k8s

        config = self._config(handle)
        try:
            core = k8s.CoreV1Api(api_client(config))
            pods = core.list_namespaced_pod(handle["namespace"], label_selector=f"job-name={handle['job']}").items
            if not pods:
                return ""
            return tail(core.read_namespaced_pod_log(pods[0].metadata.name, handle["namespace"], tail_lines=100))
        except Exception:
            return ""

    def cleanup(self, handle: dict) -> None:
        self._configs.pop(handle.get("launch", ""), None)  # the Job's TTL removes it
