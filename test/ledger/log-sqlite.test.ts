/** The ledger on SQLite (a real file in a temp dir): the shared suite, tamper tests included. */
import { ledgerStoreSuite } from "./log-suite.ts";
import { sqliteHarness } from "../store/harness.ts";

ledgerStoreSuite(sqliteHarness);
