"""The Helm chart deploy/helm/slamon: `helm lint`, `helm template` with the default values and with every optional
part enabled, every rendered manifest valid against the Kubernetes JSON schemas (KUBERNETES_VERSIONS, package
kubernetes-validate) and the ServiceMonitor / PrometheusRule against the Prometheus Operator's CRD schemas, the
environment the pods get made only of settings monitor/settings.py reads (secrets as *_FILE in mounted Secrets, and
accepted by Settings), and the PrometheusRule holding exactly what `slamon rules generate` makes of the chart's
policies.

helm and the CRDs are built and fetched by `make install` (targets helm and helm-crds,
deploy/local/install-helm.sh, cached under ~/.cache/slamon/). Missing, these tests fail under CI=true and are
skipped otherwise (with the command that installs them).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.core.policies import load_policy_dir
from monitor.rules import Options, generate
from monitor.settings import FILE_SUFFIX, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "slamon"
INSTALL = ROOT / "deploy" / "local" / "install-helm.sh"
# the oldest Kubernetes the chart supports (Chart.yaml) and the newest kubernetes-validate has schemas of
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
NAMESPACE = "slamon"
WORKLOADS = ("StatefulSet", "Deployment", "Job")
CRD_KINDS = {"ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
             "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml"}

# every optional part of the chart enabled at once
EVERYTHING: dict[str, Any] = {
    "image": {"repository": "registry.example.com/slamon", "digest": "sha256:" + "ab" * 32},
    "imagePullSecrets": ["registry-credentials"],
    "serviceAccountName": "slamon",
    "config": {"appId": "slamon-prod", "topicPrefix": "prod.", "partitions": 12, "replication": 3},
    "kafka": {"bootstrapServers": "b-1.msk.example:9096,b-2.msk.example:9096", "securityProtocol": "SASL_SSL",
              "sasl": {"mechanism": "SCRAM-SHA-512", "existingSecret": "kafka-sasl"},
              "tls": {"caSecret": "kafka-ca", "clientSecret": "kafka-client"}},
    "redis": {"existingSecret": "redis-url", "caSecret": "redis-ca"},
    "api": {"existingSecret": "slamon-api"},
    "worker": {"replicas": 6, "persistence": {"storageClass": "gp3", "size": "20Gi"},
               "podAnnotations": {"example.com/team": "sre"}, "podLabels": {"tier": "monitor"},
               "nodeSelector": {"kubernetes.io/os": "linux"},
               "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "slamon", "effect": "NoSchedule"}],
               "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                              "whenUnsatisfiable": "ScheduleAnyway",
                                              "labelSelector": {"matchLabels": {"app.kubernetes.io/component":
                                                                                "worker"}}}],
               "priorityClassName": "high-priority"},
    "board": {"podAnnotations": {"example.com/team": "sre"}, "nodeSelector": {"kubernetes.io/os": "linux"}},
    "notifier": {"alertmanagerUrl": "http://alertmanager-operated.monitoring.svc:9093",
                 "tolerations": [{"key": "dedicated", "operator": "Exists"}]},
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "grafanaDashboards": {"enabled": True, "namespace": "monitoring"},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "everything": EVERYTHING,
    # MSK / self-managed Kafka with mutual TLS only
    "mtls": {"kafka": {"securityProtocol": "SSL", "tls": {"caSecret": "kafka-ca", "clientSecret": "kafka-client"}}},
    "sasl": {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"existingSecret": "kafka-sasl"}},
             "redis": {"existingSecret": "redis-url"}, "api": {"existingSecret": "slamon-api"}},
    "existing-policies": {"policies": {"existingConfigMap": "my-policies"}, "setupJob": {"topicsApply": False}},
    "policies-from-values": {"policies": {"files": {"a.yaml": "process: a\nnodes:\n  n: {commitment: 1h, "
                                                              "tolerance: 2h}\n"}}},
    "minimal": {"board": {"enabled": False}, "notifier": {"enabled": False}, "setupJob": {"enabled": False},
                "worker": {"podDisruptionBudget": {"enabled": False}}},
}


# ------------------------------------------------------------------------------------------ tools


def _tool_paths() -> tuple[Path, Path]:
    out = subprocess.run(["bash", str(INSTALL), "paths"], capture_output=True, text=True, check=True, timeout=30)
    helm, crds = out.stdout.split()
    return Path(helm), Path(crds)


HELM, CRDS = _tool_paths()


def _missing(what: str) -> None:
    message = f"{what} is missing: `make install` (or `make helm helm-crds`) installs it"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    if not (HELM.is_file() and os.access(HELM, os.X_OK)):
        _missing(f"helm ({HELM})")
    return HELM


@pytest.fixture(scope="session")
def crds() -> dict[str, dict]:
    """kind -> the CRD's v1 openAPIV3Schema."""
    if not (CRDS / ".complete").is_file():
        _missing(f"the Prometheus Operator CRDs ({CRDS})")
    out = {}
    for kind, name in CRD_KINDS.items():
        crd = yaml.safe_load((CRDS / name).read_text())
        assert crd["spec"]["names"]["kind"] == kind
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"]]
        out[kind] = version["schema"]["openAPIV3Schema"]
    return out


def helm(helm_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm_bin), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELM_CACHE_HOME": "/tmp/slamon-helm/cache",
                               "HELM_CONFIG_HOME": "/tmp/slamon-helm/config",
                               "HELM_DATA_HOME": "/tmp/slamon-helm/data"})


def template(helm_bin: Path, values: dict, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm(helm_bin, "template", "t", str(CHART), "--namespace", NAMESPACE, "-f", str(path), *extra)


def manifests(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered(helm_bin, tmp_path_factory) -> dict[str, list[dict]]:
    """variant -> the manifests `helm template` renders with its values."""
    out = {}
    for name, values in VARIANTS.items():
        r = template(helm_bin, values, tmp_path_factory.mktemp(name))
        assert r.returncode == 0, f"{name}: {r.stderr}"
        out[name] = manifests(r.stdout)
    return out


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, component: str | None = None) -> dict:
    found = [d for d in of_kind(docs, kind)
             if component is None or d["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    assert len(found) == 1, f"{kind} {component}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    for d in docs:
        if d["kind"] in WORKLOADS:
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


# ------------------------------------------------------------------------------------------ helm itself


def test_the_chart_files_are_there():
    """files/ links to the demo policies, the generated rules and the dashboards (one copy of each in the repo)."""
    for name, pattern in (("policies", "*.yaml"), ("rules", "*.rules.yml"), ("dashboards", "*.json")):
        assert sorted((CHART / "files" / name).glob(pattern)), name


@pytest.mark.parametrize("variant", ["default", "everything"])
def test_helm_lint(helm_bin, tmp_path, variant):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(VARIANTS[variant]))
    r = helm(helm_bin, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "-f", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 chart(s) failed" in r.stdout


def test_default_values_render_the_expected_objects(rendered):
    kinds = sorted(d["kind"] for d in rendered["default"])
    assert kinds == sorted(["StatefulSet", "Service", "PodDisruptionBudget", "Deployment", "Service",
                            "Deployment", "Service", "ConfigMap", "Job"])


def test_every_optional_part_renders(rendered):
    docs = rendered["everything"]
    assert len(of_kind(docs, "ServiceMonitor")) == 3
    assert len(of_kind(docs, "PrometheusRule")) == 1
    dashboards = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == len(list((CHART / "files" / "dashboards").glob("*.json"))) == 3
    assert {d["metadata"]["namespace"] for d in dashboards} == {"monitoring"}
    worker = one(docs, "StatefulSet")
    assert worker["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/slamon@sha256:" + "ab" * 32


def test_values_that_do_not_fit_together_fail_with_a_message(helm_bin, tmp_path):
    r = template(helm_bin, {"kafka": {"securityProtocol": "SASL_SSL"}}, tmp_path)
    assert r.returncode != 0 and "kafka.sasl.existingSecret" in r.stderr
    r = template(helm_bin, {"kafka": {"securityProtocol": "PLAINTEXT", "tls": {"caSecret": "ca"}}}, tmp_path)
    assert r.returncode != 0 and "does not use TLS" in r.stderr
    r = template(helm_bin, {"kafka": {"securityProtocol": "TLS"}}, tmp_path)
    assert r.returncode != 0 and "use one of" in r.stderr
    r = template(helm_bin, {"prometheusRule": {"enabled": True, "ruleFiles": {"x.yml": "no: rules"}}}, tmp_path)
    assert r.returncode != 0 and "prometheusRule.ruleFiles.x.yml" in r.stderr


# ------------------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_manifests_are_valid_kubernetes_objects(rendered, variant, version):
    checked = 0
    for doc in rendered[variant]:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")
        checked += 1
    assert checked >= 1


def test_the_kubernetes_validation_is_strict(rendered):
    bad = copy.deepcopy(one(rendered["default"], "StatefulSet"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = bad["spec"]["template"]["spec"][
        "containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)
    bad = copy.deepcopy(one(rendered["default"], "StatefulSet"))
    bad["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def crd_problems(doc: Any, schema: dict, path: str = "") -> list[str]:
    """The CRD schema's errors (jsonschema on openAPIV3Schema), plus every field the schema does not declare: the API
    server would drop such a field silently (pruning), so a misspelt one would just not take effect."""
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(doc)] if not path else []
    if isinstance(doc, dict) and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        for key, value in doc.items():
            if key not in schema["properties"]:
                if not schema.get("additionalProperties"):
                    problems.append(f"{path}/{key}: not a field of the CRD")
                continue
            problems += crd_problems(value, schema["properties"][key], f"{path}/{key}")
    elif isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            problems += crd_problems(item, schema["items"], f"{path}/{i}")
    return problems


@pytest.mark.parametrize("variant", ["everything"])
def test_monitoring_objects_are_valid_against_the_prometheus_operator_crds(rendered, crds, variant):
    docs = [d for d in rendered[variant] if d["kind"] in CRD_KINDS]
    assert {d["kind"] for d in docs} == set(CRD_KINDS)
    for doc in docs:
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        problems = crd_problems(doc, crds[doc["kind"]])
        assert not problems, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(problems)


def test_the_crd_validation_is_strict(rendered, crds):
    monitor = copy.deepcopy(one(rendered["everything"], "ServiceMonitor", "worker"))
    monitor["spec"]["endpoints"][0]["scrape_interval"] = "15s"  # Prometheus' spelling, not the CRD's
    assert crd_problems(monitor, crds["ServiceMonitor"])
    rule = copy.deepcopy(one(rendered["everything"], "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5  # a duration is text
    assert crd_problems(rule, crds["PrometheusRule"])


# ------------------------------------------------------------------------------------------ settings


def names_settings_reads() -> set[str]:
    """Every environment variable Settings.from_env looks up (each setting and its *_FILE), recorded by running it
    on an environment that notes what it is asked for."""

    class Recording(dict):
        def __init__(self):
            super().__init__()
            self.asked: set[str] = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

    env = Recording()
    Settings.from_env(env)
    assert len(env.asked) > 40 and all(n.startswith("SLAMON_") for n in env.asked)
    return env.asked


def test_the_recorded_names_are_the_settings_and_their_files():
    read = names_settings_reads()
    assert {"SLAMON_KAFKA_BOOTSTRAP", "SLAMON_KAFKA_SASL_PASSWORD_FILE", "SLAMON_API_TOKEN_FILE"} <= read
    plain = {n for n in read if not n.endswith(FILE_SUFFIX)}
    assert read == plain | {n + FILE_SUFFIX for n in plain}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_pods_get_only_settings_that_settings_reads(rendered, variant):
    read = names_settings_reads()
    for where, spec in pod_specs(rendered[variant]):
        for c in containers(spec):
            assert "envFrom" not in c, f"{where}/{c['name']}"
            names = [e["name"] for e in c.get("env", [])]
            assert len(names) == len(set(names)), f"{where}/{c['name']}: repeated {names}"
            unknown = set(names) - read
            assert not unknown, f"{where}/{c['name']}: Settings does not read {sorted(unknown)}"
            # secrets only as files: no value taken from a Secret into the environment
            assert all("valueFrom" not in e for e in c.get("env", [])), f"{where}/{c['name']}"


def mounted_file(spec: dict, container: dict, path: str) -> tuple[dict, str]:
    """The volume `path` is in, and the file's name in it."""
    for m in container.get("volumeMounts", []):
        prefix = m["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            (volume,) = [v for v in spec["volumes"] if v["name"] == m["name"]]
            return volume, path[len(prefix):]
    raise AssertionError(f"{container['name']}: {path} is on no mounted volume")


FILE_SETTINGS = ("SLAMON_KAFKA_SSL_CAFILE", "SLAMON_KAFKA_SSL_CERTFILE", "SLAMON_KAFKA_SSL_KEYFILE",
                 "SLAMON_REDIS_SSL_CAFILE")


@pytest.mark.parametrize("variant", ["everything", "mtls", "sasl"])
def test_secret_files_are_keys_of_mounted_secrets(rendered, variant):
    seen = set()
    for where, spec in pod_specs(rendered[variant]):
        for c in containers(spec):
            for name, value in env_of(c).items():
                if not (name.endswith(FILE_SUFFIX) or name in FILE_SETTINGS):
                    continue
                volume, key = mounted_file(spec, c, value)
                seen.add(name)
                if name == "SLAMON_ADVERTISED_URL_FILE":  # written by the worker's init container
                    assert "emptyDir" in volume
                    continue
                if name == "SLAMON_GROUP_INSTANCE_ID_FILE":  # the pod's name: static group membership
                    assert volume["downwardAPI"]["items"] == [{"path": key,
                                                               "fieldRef": {"fieldPath": "metadata.name"}}]
                    continue
                assert "secret" in volume, f"{where}/{c['name']}: {name} is not in a Secret"
                assert key in [i["path"] for i in volume["secret"]["items"]], f"{where}: {name}"
    static = "SLAMON_GROUP_INSTANCE_ID_FILE"
    expected = {"everything": {"SLAMON_KAFKA_SASL_USERNAME_FILE", "SLAMON_KAFKA_SASL_PASSWORD_FILE",
                               "SLAMON_REDIS_URL_FILE", "SLAMON_API_TOKEN_FILE", "SLAMON_ADVERTISED_URL_FILE",
                               static, *FILE_SETTINGS},
                "mtls": {"SLAMON_KAFKA_SSL_CAFILE", "SLAMON_KAFKA_SSL_CERTFILE", "SLAMON_KAFKA_SSL_KEYFILE", static},
                "sasl": {"SLAMON_KAFKA_SASL_USERNAME_FILE", "SLAMON_KAFKA_SASL_PASSWORD_FILE",
                         "SLAMON_REDIS_URL_FILE", "SLAMON_API_TOKEN_FILE", "SLAMON_ADVERTISED_URL_FILE", static}}
    assert seen == expected[variant]


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate (also usable as its own CA) and its key."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=slamon",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


SECRET_CONTENT = {"SLAMON_KAFKA_SASL_USERNAME_FILE": "slamon", "SLAMON_KAFKA_SASL_PASSWORD_FILE": "secret",
                  "SLAMON_REDIS_URL_FILE": "rediss://:secret@redis:6380/0", "SLAMON_API_TOKEN_FILE": "token",
                  "SLAMON_ADVERTISED_URL_FILE": "http://t-slamon-worker-0.t-slamon-worker.slamon.svc:6066",
                  "SLAMON_GROUP_INSTANCE_ID_FILE": "t-slamon-worker-0"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_settings_accept_what_every_container_gets(rendered, variant, tmp_path, pem):
    """Settings.from_env on each container's environment, its files replaced by local ones (secrets with plausible
    content, certificates and keys by a real pair): what `slamon` would say at start about its settings."""
    cert, key = pem
    for where, spec in pod_specs(rendered[variant]):
        for c in containers(spec):
            if c["command"][:1] != ["slamon"]:
                continue
            env = {}
            for name, value in env_of(c).items():
                if name.endswith(FILE_SUFFIX):
                    local = tmp_path / name
                    local.write_text(SECRET_CONTENT[name])
                    value = str(local)
                elif name in FILE_SETTINGS:
                    value = str(key if name.endswith("KEYFILE") else cert)
                env[name] = value
            try:
                Settings.from_env(env)
            except SettingsError as exc:
                pytest.fail(f"{where}/{c['name']}: {exc}")


# ------------------------------------------------------------------------------------------ workloads


@pytest.mark.parametrize("variant", ["default", "everything"])
def test_every_pod_runs_non_root_with_a_read_only_root_and_limits(rendered, variant):
    for where, spec in pod_specs(rendered[variant]):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["enableServiceLinks"] is False, where  # Faust reads e.g. WEB_PORT from the environment
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}/{c['name']}: {kind}"
            if c["command"][:1] == ["slamon"]:
                tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{where}/{c['name']}: no writable /tmp"


@pytest.mark.parametrize("variant", ["default", "everything"])
def test_workers_are_a_statefulset_with_rocksdb_on_a_claim_per_pod(rendered, variant):
    docs = rendered[variant]
    sts = one(docs, "StatefulSet", "worker")
    spec = sts["spec"]["template"]["spec"]
    (worker,) = spec["containers"]
    env = env_of(worker)
    assert worker["command"] == ["slamon", "worker"]
    assert env["SLAMON_STORE"] == "rocksdb://"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    data = [m for m in worker["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert [m["mountPath"] for m in data] == [env["SLAMON_DATA_DIR"]]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (port,) = worker["ports"]
    assert port["name"] == worker["livenessProbe"]["httpGet"]["port"] == "http"
    assert str(port["containerPort"]) == env["SLAMON_WEB_PORT"] and env["SLAMON_WEB_HOST"] == "0.0.0.0"
    # the headless Service gives each pod its stable name
    service = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == sts["spec"]["serviceName"]]
    assert service and service[0]["spec"]["clusterIP"] == "None"
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service[0]["spec"]["selector"].items() <= pod_labels.items()
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_board_and_notifier_are_deployments(rendered):
    docs = rendered["everything"]
    for name in ("board", "notifier"):
        (c,) = one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["slamon", name]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert env_of(one(docs, "Deployment", "notifier")["spec"]["template"]["spec"]["containers"][0])[
        "SLAMON_ALERTMANAGER_URL"] == EVERYTHING["notifier"]["alertmanagerUrl"]
    assert not of_kind(rendered["minimal"], "Deployment") and not of_kind(rendered["minimal"], "Job")


def test_the_api_advertises_the_pods_stable_name(rendered):
    spec = one(rendered["everything"], "StatefulSet")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert "t-slamon-worker.slamon.svc:6066" in init["command"][-1]
    assert "initContainers" not in one(rendered["default"], "StatefulSet")["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------------------ setup Job


def test_the_setup_job_applies_topics_then_policies_before_install_and_upgrade(rendered):
    docs = rendered["default"]
    job = one(docs, "Job")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    spec = job["spec"]["template"]["spec"]
    assert [c["command"] for c in spec["initContainers"]] == [["slamon", "topics", "apply"]]
    assert [c["command"] for c in spec["containers"]] == [["slamon", "policy", "apply", "/etc/slamon/policies"]]
    # the policies' ConfigMap is a hook too, created before the Job (pre-install runs before ordinary resources)
    cm = one(docs, "ConfigMap", "setup")
    assert set(cm["metadata"]["annotations"]["helm.sh/hook"].split(",")) == hooks
    assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"])
    (volume,) = [v for v in spec["volumes"] if v["name"] == "policies"]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    files = {p.name: p.read_text() for p in (CHART / "files" / "policies").glob("*.yaml")}
    assert cm["data"] == files


def test_policies_from_values_or_an_existing_configmap(rendered):
    cm = one(rendered["policies-from-values"], "ConfigMap", "setup")
    assert cm["data"] == VARIANTS["policies-from-values"]["policies"]["files"]
    docs = rendered["existing-policies"]
    assert not [d for d in of_kind(docs, "ConfigMap") if "helm.sh/hook" in d["metadata"].get("annotations", {})]
    spec = one(docs, "Job")["spec"]["template"]["spec"]
    assert "initContainers" not in spec  # topicsApply: false
    (volume,) = [v for v in spec["volumes"] if v["name"] == "policies"]
    assert volume["configMap"]["name"] == "my-policies"


def test_policies_load_from_a_mounted_configmap(tmp_path):
    """The kubelet mounts a ConfigMap as links into a hidden, timestamped directory (name -> ..data/name,
    ..data -> ..2026_...): `slamon policy apply DIR` reads the same policies from there."""
    source = CHART / "files" / "policies"
    stamp = tmp_path / "..2026_12_02_06_00_00.123456789"
    stamp.mkdir()
    for p in source.glob("*.yaml"):
        (stamp / p.name).write_text(p.read_text())
        (tmp_path / p.name).symlink_to(Path("..data") / p.name)
    (tmp_path / "..data").symlink_to(stamp.name)
    mounted, _ = load_policy_dir(tmp_path)
    direct, _ = load_policy_dir(source)
    assert mounted.policies.keys() == direct.policies.keys() and mounted.policies
    assert mounted.calendars.keys() == direct.calendars.keys() and mounted.calendars
    for name, policy in direct.policies.items():
        assert (mounted.policies[name].version, mounted.policies[name].nodes) == (policy.version, policy.nodes)


# ------------------------------------------------------------------------------------------ monitoring


def generated_groups(policies_dir: Path, opts: Options | None = None) -> tuple[dict[str, str], list[dict]]:
    policies, _ = load_policy_dir(policies_dir)
    files = generate(policies, f"slamon rules generate --policies {policies_dir}", opts or Options())
    return files, [g for name in sorted(files) for g in yaml.safe_load(files[name])["groups"]]


def test_the_prometheus_rule_holds_the_rules_generated_from_the_charts_policies(rendered):
    _, expected = generated_groups(CHART / "files" / "policies")
    rule = one(rendered["everything"], "PrometheusRule")
    assert rule["spec"]["groups"] == expected
    names = [r.get("alert") or r.get("record") for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "SLACommitmentBudgetBurn" in names and "SlamonNoWorkers" in names
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_prometheus_rule_takes_the_rules_of_your_policies(helm_bin, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "repair.yaml").write_text("process: repair\ntarget: 0.9\nnodes:\n"
                                          "  dispatch: {commitment: 2h, tolerance: 4h, owner: field}\n")
    files, expected = generated_groups(policies)
    r = template(helm_bin, {"prometheusRule": {"enabled": True, "ruleFiles": files}}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert one(manifests(r.stdout), "PrometheusRule")["spec"]["groups"] == expected
    assert "repair" in json.dumps(expected)


def test_the_workers_are_scraped_as_the_job_the_rules_select(rendered):
    docs = rendered["everything"]
    job = Options().job
    exprs = [r["expr"] for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert any(f'up{{job="{job}"}}' in e for e in exprs)
    for component, expected in (("worker", job), ("board", "slamon-oncall"), ("notifier", "slamon-oncall")):
        monitor = one(docs, "ServiceMonitor", component)
        (endpoint,) = monitor["spec"]["endpoints"]
        assert [r["replacement"] for r in endpoint["relabelings"] if r.get("targetLabel") == "job"] == [expected]
        services = [s for s in of_kind(docs, "Service")
                    if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert len(services) == 1, component  # one Service per component: no target scraped twice
        assert endpoint["port"] in [p["name"] for p in services[0]["spec"]["ports"]]


def test_dashboards_are_configmaps_for_the_grafana_sidecar(rendered):
    maps = [d for d in of_kind(rendered["everything"], "ConfigMap")
            if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    shipped = {p.name: json.loads(p.read_text()) for p in (CHART / "files" / "dashboards").glob("*.json")}
    got = {}
    for m in maps:
        ((name, text),) = m["data"].items()
        got[name] = json.loads(text)
        assert m["metadata"]["annotations"]["grafana_folder"] == "SLA monitor"
    assert got == shipped
    assert shipped.keys() == {p.name for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")}
