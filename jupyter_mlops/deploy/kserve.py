"""A KServe ``InferenceService`` (serving.kserve.io/v1beta1) for a packaged deployment: the image as a custom
predictor container on port 8080, probed on /ready and /health.

An endpoint with two deployments maps onto KServe's canary rollout: applying the manifest of the deployment that
gets ``p``% of the endpoint's traffic makes it the latest revision with ``canaryTrafficPercent: p``, the revision
applied before it keeps the rest. The InferenceService is named after the endpoint, so both share one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from jupyter_mlops.deploy.endpoints import DeploymentInfo, EndpointInfo
    from jupyter_mlops.deploy.resources import Resources

PORT = 8080
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def inference_service(
    name: str, image: str, *, model: str, canary_percent: int | None = None, resources: Resources | None = None
) -> dict[str, Any]:
    """The manifest as a dict (``yaml.safe_dump`` it); ``name`` must be a DNS label. ``resources`` become the
    container's requests and limits (``nvidia.com/gpu``, in limits as Kubernetes wants it, for GPUs)."""
    if not _DNS_LABEL.match(name):
        raise InvalidInput(
            f"{name!r} cannot name an InferenceService: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit."
        )

    def probe(path: str, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT}, "periodSeconds": period, "failureThreshold": 3}

    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "containers": [
            {
                "name": "kserve-container",
                "image": image,
                "ports": [{"containerPort": PORT, "protocol": "TCP"}],
                "readinessProbe": {**probe("/ready", 5), "initialDelaySeconds": 2},
                "livenessProbe": {**probe("/health", 10), "initialDelaySeconds": 10},
            }
        ],
    }
    if resources is not None and not resources.empty:
        predictor["containers"][0]["resources"] = container_resources(resources)
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "jupyter-mlops"},
            "annotations": {"jupyter-mlops/model": model},
        },
        "spec": {"predictor": predictor},
    }


def container_resources(resources: Resources) -> dict[str, Any]:
    """Kubernetes' ``resources`` of the container: cpu as cores or millicores, memory as a quantity, GPUs as
    ``nvidia.com/gpu`` (a "prefer" asks for one: a cluster schedules on GPUs or it does not)."""
    amounts: dict[str, Any] = {}
    if resources.cpu is not None:
        cpu = resources.cpu
        amounts["cpu"] = str(int(cpu)) if float(cpu).is_integer() else f"{round(cpu * 1000)}m"
    if resources.memory is not None:
        text = resources.memory_text or str(resources.memory)
        amounts["memory"] = text if re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?", text) else str(resources.memory)
    out: dict[str, Any] = {"requests": dict(amounts), "limits": dict(amounts)}
    if resources.gpu != 0:
        out["limits"]["nvidia.com/gpu"] = 1 if resources.gpu == "prefer" else int(resources.gpu)
    return {k: v for k, v in out.items() if v}


def deployment_of(endpoint: EndpointInfo, served: str, requested: str) -> DeploymentInfo | None:
    """The endpoint's deployment that serves ``served`` (or was asked for ``requested``), if one does."""
    for deployment in endpoint.deployments:
        if served in (deployment.model, deployment.requested) or requested in (deployment.model, deployment.requested):
            return deployment
    return None


def canary_percent(endpoint: EndpointInfo, served: str, requested: str) -> int | None:
    """The traffic share of the endpoint's deployment serving ``served`` (or asked for ``requested``), when the
    endpoint splits traffic between two deployments; None when it has one."""
    deployments = endpoint.deployments
    if len(deployments) == 1:
        return None
    if len(deployments) != 2:
        raise InvalidInput(
            f"Endpoint {endpoint.name} has {len(deployments)} deployments; a KServe canary rollout has two "
            "revisions. Package it without endpoint=, or reduce the endpoint to two deployments."
        )
    deployment = deployment_of(endpoint, served, requested)
    if deployment is not None:
        return deployment.traffic
    models = ", ".join(f"{d.name} serves {d.model}" for d in deployments)
    raise InvalidInput(
        f"No deployment of endpoint {endpoint.name} serves {requested} ({models}): package the model one of them "
        "serves to roll it out as the canary."
    )
