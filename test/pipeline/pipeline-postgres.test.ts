/** The pipeline end to end on the test PostgreSQL (NEXUS_TEST_DATABASE_URL; a fresh schema; fails without it). */
import { pipelineSuite } from "./suite.ts";

pipelineSuite("postgres");
