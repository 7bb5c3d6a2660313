/** The service modules `nexus up` starts, in order (each adapter adds itself here). */
import type { ServiceModule } from "../service.ts";

/** Every service module of the stack. */
export const SERVICE_MODULES: readonly ServiceModule[] = [];
