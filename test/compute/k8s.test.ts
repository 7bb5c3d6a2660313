import assert from "node:assert/strict";
import { test } from "node:test";
import { validate as vNamespace } from "kubernetes-models/_schemas/IoK8sApiCoreV1Namespace";
import { validate as vQuota } from "kubernetes-models/_schemas/IoK8sApiCoreV1ResourceQuota";
import { validate as vLimitRange } from "kubernetes-models/_schemas/IoK8sApiCoreV1LimitRange";
import { validate as vPvc } from "kubernetes-models/_schemas/IoK8sApiCoreV1PersistentVolumeClaim";
import { validate as vService } from "kubernetes-models/_schemas/IoK8sApiCoreV1Service";
import { validate as vDeployment } from "kubernetes-models/_schemas/IoK8sApiAppsV1Deployment";
import { validate as vNetpol } from "kubernetes-models/_schemas/IoK8sApiNetworkingV1NetworkPolicy";
import { PROFILES } from "../../src/services/compute/envelope.ts";
import { manifestList, namespaceOf, renderManifests, type KubeObject } from "../../src/services/compute/k8s.ts";
import type { WorkloadSpec } from "../../src/services/compute/reconciler.ts";

type Validator = ((data: unknown) => boolean) & { errors?: unknown };
const validators: Record<string, Validator> = {
  Namespace: vNamespace, ResourceQuota: vQuota, LimitRange: vLimitRange, PersistentVolumeClaim: vPvc,
  Service: vService, Deployment: vDeployment, NetworkPolicy: vNetpol,
};

function validateAll(objs: readonly KubeObject[]): void {
  for (const o of objs) {
    const v = validators[o.kind];
    assert.ok(v, `no validator for ${o.kind}`);
    // Through JSON, as kubectl would receive it.
    assert.ok(v(JSON.parse(JSON.stringify(o))), `${o.kind}: ${JSON.stringify(v.errors)}`);
  }
}

const workloads: WorkloadSpec[] = [
  { name: "web", source: { kind: "app", dir: "/srv/web" }, port: 8080, env: { MODE: "prod" } },
  { name: "worker", source: { kind: "image", ref: "localhost/worker:1" }, cmd: ["node", "worker.js"], state: "stopped" },
];

test("an IMVU renders as valid Kubernetes objects (OpenAPI schemas of kubernetes-models)", () => {
  const objs = renderManifests({ imvu: "Stage.Example", envelope: PROFILES.small, workloads, image: (w) => `registry.local/${w.name}:1` });
  validateAll(objs);
  assert.deepEqual(objs.map((o) => o.kind), ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service", "Deployment"]);
  const ns = namespaceOf("Stage.Example");
  assert.match(ns, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
  for (const o of objs.slice(1)) assert.equal(o.metadata?.namespace, ns);
  const list = manifestList(objs);
  assert.equal(list.items.length, objs.length);
});

test("the envelope becomes quota and limits; the policy admits only the gateway", () => {
  const objs = renderManifests({ imvu: "alpha", envelope: PROFILES.small, workloads, image: () => "img:1", gatewayNamespace: "edge" });
  const quota = objs.find((o) => o.kind === "ResourceQuota");
  assert.equal(quota?.kind === "ResourceQuota" && quota.spec?.hard?.["limits.memory"], "256Mi");
  assert.equal(quota?.kind === "ResourceQuota" && quota.spec?.hard?.["limits.cpu"], "500m");
  assert.equal(quota?.kind === "ResourceQuota" && quota.spec?.hard?.["requests.storage"], "1Gi");
  const np = objs.find((o) => o.kind === "NetworkPolicy");
  assert.ok(np?.kind === "NetworkPolicy");
  assert.deepEqual(np.spec?.podSelector, {});
  assert.deepEqual(np.spec?.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(np.spec?.ingress, [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "edge" } } }] }]);
  const deps = objs.filter((o) => o.kind === "Deployment");
  let cpuSum = 0;
  for (const d of deps) {
    assert.ok(d.kind === "Deployment");
    const c = d.spec?.template.spec?.containers[0];
    assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c?.securityContext?.capabilities?.drop, ["ALL"]);
    assert.equal(d.spec?.template.spec?.securityContext?.runAsNonRoot, true);
    cpuSum += Number(String(c?.resources?.limits?.cpu).replace("m", ""));
  }
  assert.ok(cpuSum <= 500, "workload limits sum within the quota");
  assert.equal(deps[1]?.kind === "Deployment" && deps[1].spec?.replicas, 0);
});

test("the validators do reject a broken object (the check is real)", () => {
  const [, quota] = renderManifests({ imvu: "alpha", envelope: PROFILES.small, workloads: [], image: () => "i" });
  const broken = JSON.parse(JSON.stringify(quota)) as { spec: { hard: unknown } };
  broken.spec.hard = "all";
  assert.equal(vQuota(broken), false);
  const dep = renderManifests({ imvu: "a", envelope: PROFILES.small, workloads: [workloads[0] as WorkloadSpec], image: () => "i" }).find((o) => o.kind === "Deployment");
  const noSelector = JSON.parse(JSON.stringify(dep)) as { spec: Record<string, unknown> };
  delete noSelector.spec.selector;
  assert.equal(vDeployment(noSelector), false);
});
