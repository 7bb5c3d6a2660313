/** services/compute: envelopes, the container driver, reconciler, volumes, snapshots, metering, Kubernetes rendering. */
export { computeErrors, type ComputeErrorCode } from "./errors.ts";
export {
  EnvelopeSchema, PROFILES, profile, parseEnvelope, envelopeToWire, fits, addUsage, cpusFlag, k8sCpu, k8sBytes,
  type Envelope, type EnvelopeWire, type Usage, type FitResult, type Excess, type ProfileName, type Resource,
} from "./envelope.ts";
export type { ContainerDriver, ContainerInfo, ContainerState, ContainerUsage, Labels, Mount, NetworkInfo, RootSource, RunSpec } from "./driver.ts";
export { PodmanDriver, podmanAvailable, ensurePodman, runArgs, PODMAN_PACKAGES, type PodmanOptions, type PodmanStatus } from "./podman.ts";
export { ensureBaseImage, appCommand, BASE_IMAGE_REPO, STATIC_SERVER_SOURCE } from "./base-image.ts";
export { Volumes, loopVolumesSupported, type VolumeInfo, type VolumeMode } from "./volumes.ts";
export { createSnapshot, extractSnapshot, verifySnapshot, listSnapshots, deleteSnapshot, type SnapshotInfo } from "./snapshot.ts";
export {
  Reconciler, plan, runSpecFor, specHash, WorkloadSpecSchema,
  type Action, type ComputeEvent, type DesiredState, type DesiredStateSource, type DesiredWorkload, type ImvuDesired,
  type Observed, type ReconcileReport, type ActionResult, type WorkloadSpec,
} from "./reconciler.ts";
export { Sampler, meterStep, emptyMeterState, type UsageRecord, type MeterState, type Reading } from "./metering.ts";
export { renderManifests, manifestList, namespaceOf, type KubeObject, type ManifestInput } from "./k8s.ts";
export { ComputeFabric, type ComputeOptions, type WorkloadStatus, type RestoreResult } from "./fabric.ts";
export { computeDoctor, type DoctorCheck, type DoctorReport } from "./doctor.ts";
export { LABEL_FABRIC, LABEL_IMVU, LABEL_WORKLOAD, LABEL_SPEC, slug } from "./names.ts";
