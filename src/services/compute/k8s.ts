/**
 * Scale-out rendering (pure): one IMVU as Kubernetes objects, the same intent podman runs on one
 * machine. Namespace per IMVU; ResourceQuota and LimitRange from the envelope; a NetworkPolicy
 * denying all traffic but the gateway's namespace; per workload a Deployment and a Service; one
 * PersistentVolumeClaim for /data. Types come from kubernetes-models (generated from the
 * Kubernetes OpenAPI document), so a misspelt field does not compile; tests validate the output
 * against that package's JSON-schema validators.
 */
import type { ILimitRange } from "kubernetes-models/v1/LimitRange";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IResourceQuota } from "kubernetes-models/v1/ResourceQuota";
import type { IService } from "kubernetes-models/v1/Service";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { k8sBytes, k8sCpu, type Envelope } from "./envelope.ts";
import { slug } from "./names.ts";
import type { WorkloadSpec } from "./reconciler.ts";
import { WORKLOAD_GID, WORKLOAD_UID } from "./volumes.ts";

/** Any object `renderManifests` emits. */
export type KubeObject = INamespace | IResourceQuota | ILimitRange | INetworkPolicy | IPersistentVolumeClaim | IDeployment | IService;

/** Label keys on the rendered objects. */
export const K8S_LABEL_IMVU = "nexus.cos/imvu";
export const K8S_LABEL_WORKLOAD = "nexus.cos/workload";
export const K8S_ANNOTATION_IMVU_ID = "nexus.cos/imvu-id";
/** The namespace the edge gateway runs in (the only peer the NetworkPolicy admits). */
export const DEFAULT_GATEWAY_NAMESPACE = "nexus-gateway";
/** /tmp is memory-backed, as podman's read-only root gives it. */
const TMP_BYTES = 64n * 1024n * 1024n;

/** What the renderer needs. */
export interface ManifestInput {
  readonly imvu: string;
  readonly envelope: Envelope;
  readonly workloads: readonly WorkloadSpec[];
  /** The image each workload runs from the cluster's registry (app and rootfs sources are built and pushed beforehand). */
  readonly image: (w: WorkloadSpec) => string;
  readonly gatewayNamespace?: string;
  readonly storageClassName?: string;
}

/** The namespace of an IMVU. */
export function namespaceOf(imvu: string): string {
  return `imvu-${slug(imvu)}`;
}

/** The Kubernetes objects of one IMVU, in apply order. */
export function renderManifests(input: ManifestInput): KubeObject[] {
  const ns = namespaceOf(input.imvu);
  const labels = { [K8S_LABEL_IMVU]: slug(input.imvu), "app.kubernetes.io/managed-by": "nexus-cos" };
  const meta = (name: string, extra: Record<string, string> = {}) => ({ name, namespace: ns, labels: { ...labels, ...extra } });
  const e = input.envelope;
  const n = Math.max(1, input.workloads.length);
  // Podman caps the IMVU as a whole with a parent cgroup; Kubernetes quotas sum container limits,
  // so each workload gets an equal share and requests equal limits (Guaranteed QoS).
  const cpuEach = k8sCpu(Math.max(1, Math.floor(e.cpuMillis / n)));
  const memEach = k8sBytes(e.memoryBytes / BigInt(n));
  const gateway = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": input.gatewayNamespace ?? DEFAULT_GATEWAY_NAMESPACE } } };
  const out: KubeObject[] = [
    {
      apiVersion: "v1", kind: "Namespace",
      metadata: { name: ns, labels, annotations: { [K8S_ANNOTATION_IMVU_ID]: input.imvu } },
    },
    {
      apiVersion: "v1", kind: "ResourceQuota", metadata: meta("envelope"),
      spec: {
        hard: {
          "requests.cpu": k8sCpu(e.cpuMillis), "limits.cpu": k8sCpu(e.cpuMillis),
          "requests.memory": k8sBytes(e.memoryBytes), "limits.memory": k8sBytes(e.memoryBytes),
          "requests.storage": k8sBytes(e.diskBytes), persistentvolumeclaims: "1",
          pods: String(n), services: String(n), "count/deployments.apps": String(n),
        },
      },
    },
    {
      apiVersion: "v1", kind: "LimitRange", metadata: meta("envelope"),
      spec: {
        limits: [
          {
            type: "Container",
            max: { cpu: k8sCpu(e.cpuMillis), memory: k8sBytes(e.memoryBytes) },
            default: { cpu: cpuEach, memory: memEach },
            defaultRequest: { cpu: cpuEach, memory: memEach },
          },
          { type: "PersistentVolumeClaim", max: { storage: k8sBytes(e.diskBytes) } },
        ],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta("gateway-only"),
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"], ingress: [{ from: [gateway] }], egress: [{ to: [gateway] }] },
    },
    {
      apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: meta("data"),
      spec: {
        accessModes: [input.workloads.length > 1 ? "ReadWriteMany" : "ReadWriteOnce"],
        resources: { requests: { storage: k8sBytes(e.diskBytes) } },
        ...(input.storageClassName !== undefined ? { storageClassName: input.storageClassName } : {}),
      },
    },
  ];
  for (const w of input.workloads) out.push(...renderWorkload(w, input, meta, { cpu: cpuEach, memory: memEach }));
  return out;
}

function renderWorkload(
  w: WorkloadSpec,
  input: ManifestInput,
  meta: (name: string, extra?: Record<string, string>) => { name: string; namespace: string; labels: Record<string, string> },
  each: { cpu: string; memory: string },
): KubeObject[] {
  const sel = { [K8S_LABEL_WORKLOAD]: w.name };
  const env = Object.entries({ HOME: "/data", ...(w.port !== undefined ? { PORT: String(w.port) } : {}), ...(w.env ?? {}) })
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => ({ name, value }));
  const deployment: IDeployment = {
    apiVersion: "apps/v1", kind: "Deployment", metadata: meta(w.name, sel),
    spec: {
      replicas: w.state === "stopped" ? 0 : 1,
      strategy: { type: "Recreate" },
      selector: { matchLabels: sel },
      template: {
        metadata: { labels: { ...meta(w.name).labels, ...sel } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true, runAsUser: WORKLOAD_UID, runAsGroup: WORKLOAD_GID, fsGroup: WORKLOAD_GID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: w.name,
              image: input.image(w),
              ...(w.cmd !== undefined ? { command: [...w.cmd] } : {}),
              env,
              ...(w.port !== undefined ? { ports: [{ name: "http", containerPort: w.port, protocol: "TCP" }] } : {}),
              resources: { limits: each, requests: each },
              securityContext: {
                readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [{ name: "data", mountPath: "/data" }, { name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [
            { name: "data", persistentVolumeClaim: { claimName: "data" } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: k8sBytes(TMP_BYTES) } },
          ],
        },
      },
    },
  };
  if (w.port === undefined) return [deployment];
  const service: IService = {
    apiVersion: "v1", kind: "Service", metadata: meta(w.name, sel),
    spec: { type: "ClusterIP", selector: sel, ports: [{ name: "http", port: w.port, targetPort: w.port, protocol: "TCP" }] },
  };
  return [deployment, service];
}

/** The objects as one `v1 List` (what `kubectl apply -f` takes as JSON). */
export function manifestList(objects: readonly KubeObject[]): { apiVersion: "v1"; kind: "List"; items: readonly KubeObject[] } {
  return { apiVersion: "v1", kind: "List", items: objects };
}
