/** The service modules `nexus up` starts, in order (each adapter adds itself here). */
import type { ServiceModule } from "../service.ts";
import { computeService } from "./compute.ts";
import { dnsService } from "./dns.ts";
import { mailService } from "./mail.ts";
import { gatewayService } from "./gateway.ts";
import { exitGraceService } from "../../imvu/grace.ts";

/** Every service module of the stack. */
export const SERVICE_MODULES: readonly ServiceModule[] = [dnsService, computeService, gatewayService, mailService, exitGraceService];
