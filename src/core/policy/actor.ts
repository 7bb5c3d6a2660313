/** Which actor classes an identity belongs to for one command (input to gates 1, 7, 10, 14). */
import type { StateReader } from "../pipeline/state.ts";
import type { ActorClass } from "./constitution.ts";
import type { Command } from "./schemas.ts";

/** The classes of `cmd.actor` for `cmd`, from the state before the command. */
export function classifyActor(state: StateReader, cmd: Command): Set<ActorClass> {
  const out = new Set<ActorClass>(["anyone"]);
  const id = state.get("identity", cmd.actor);
  const platform = state.get("platform", "genesis");
  if (platform?.platformId === cmd.actor) out.add("platform");
  if (state.get("admin", cmd.actor)) out.add("admin");
  if (id?.kind === "person") out.add("person");
  if (id?.kind === "service") for (const r of id.roles) out.add(`service:${r}` as ActorClass);
  if (cmd.imvu !== undefined) {
    const imvu = state.get("imvu", cmd.imvu);
    if (imvu?.owner === cmd.actor) out.add("owner");
    const d = state.get("delegation", `${cmd.imvu}/${cmd.actor}`);
    if (d?.scope.includes(cmd.type)) out.add("delegate");
  }
  return out;
}
