/** The ledger on the real PostgreSQL (NEXUS_TEST_DATABASE_URL; fails without it): the shared suite. */
import { ledgerStoreSuite } from "./log-suite.ts";
import { postgresHarness } from "../store/harness.ts";

ledgerStoreSuite(postgresHarness);
