/** Error codes of the compute part (services/compute); docs/errors.md lists them under "## compute". */
import { defineErrors } from "../../core/errors.ts";

/** The compute part's error table. */
export const computeErrors = defineErrors({
  COMPUTE_PODMAN_MISSING: {
    message:
      "podman is not installed: run `./nexus up` as root on Debian (it installs podman, runc and catatonit) or `apt-get install podman runc catatonit`",
    http: 503,
    exit: 3,
  },
  COMPUTE_TOOL_MISSING: {
    message: "A program compute drives is not installed (iptables, mkfs.ext4, mount, losetup): run `./nexus up` as root",
    http: 503,
    exit: 3,
  },
  COMPUTE_PODMAN_FAILED: { message: "A podman command failed", http: 502, exit: 3 },
  COMPUTE_PODMAN_TIMEOUT: { message: "A podman command did not finish in time and was killed", http: 504, exit: 3 },
  COMPUTE_PODMAN_OUTPUT: { message: "podman printed output that could not be parsed", http: 502, exit: 3 },
  COMPUTE_ENVELOPE_INVALID: { message: "The envelope is not valid", http: 400, exit: 2 },
  COMPUTE_SPEC_INVALID: { message: "The workload specification is not valid", http: 400, exit: 2 },
  COMPUTE_APP_INVALID: {
    message: "The app directory has no entry point (package.json main/start, index.js, server.js or index.html)",
    http: 400,
    exit: 2,
  },
  COMPUTE_WORKLOAD_NOT_FOUND: { message: "No such workload", http: 404, exit: 3 },
  COMPUTE_NETWORK_FAILED: { message: "The IMVU network could not be set up", http: 500, exit: 3 },
  COMPUTE_FIREWALL_FAILED: { message: "The rules isolating IMVU networks could not be installed", http: 500, exit: 3 },
  COMPUTE_CGROUP_FAILED: { message: "The IMVU control group could not be set up", http: 500, exit: 3 },
  COMPUTE_BASE_IMAGE_FAILED: { message: "The base image could not be built", http: 500, exit: 3 },
  COMPUTE_IMAGE_LOAD_FAILED: { message: "The OCI archive could not be loaded", http: 422, exit: 1 },
  COMPUTE_VOLUME_FAILED: { message: "The IMVU volume could not be prepared", http: 500, exit: 3 },
  COMPUTE_VOLUME_SHRINK: {
    message: "A volume cannot be shrunk in place; snapshot, recreate and restore instead",
    http: 409,
    exit: 1,
  },
  COMPUTE_DISK_QUOTA: { message: "The IMVU volume is beyond its disk envelope", http: 507, exit: 1 },
  COMPUTE_SNAPSHOT_NOT_FOUND: { message: "No such snapshot", http: 404, exit: 3 },
  COMPUTE_SNAPSHOT_CORRUPT: {
    message: "The snapshot does not match its digest or is not a well-formed archive",
    http: 422,
    exit: 1,
  },
  COMPUTE_SNAPSHOT_TOO_LARGE: { message: "The snapshot is larger than the declared limit", http: 413, exit: 1 },
  COMPUTE_SOURCE_MISSING: {
    message: "The workload's source is not in its IMVU's source area: upload it first (`nexus compute deploy --app/--rootfs` does)",
    http: 404,
    exit: 3,
  },
  COMPUTE_VOLUME_IMPORT_REFUSED: {
    message: "A volume is uploaded only into an IMVU made by `nexus imvu import`, before any workload is deployed on it",
    http: 409,
    exit: 1,
  },
  COMPUTE_SOURCE_MISMATCH: { message: "The uploaded bytes do not hash to the SHA-256 they were uploaded under", http: 422, exit: 1 },
  COMPUTE_SOURCE_TOO_LARGE: { message: "The uploaded source is larger than the limit", http: 413, exit: 1 },
  COMPUTE_UNAVAILABLE: { message: "The compute service is not running in this process", http: 503, exit: 3 },
  COMPUTE_SNAPSHOT_UNSAFE: {
    message: "The snapshot holds a path that would escape the volume (absolute, '..' or through a symlink)",
    http: 422,
    exit: 1,
  },
});

/** The codes of the compute part. */
export type ComputeErrorCode = keyof typeof computeErrors.specs;
