/** The pipeline end to end on SQLite (a temp data directory). */
import { pipelineSuite } from "./suite.ts";

pipelineSuite("sqlite");
