/**
 * The Nexus COS web console: creators sign in with a browser key (or a CLI identity file), act
 * through signed commands and verify every answer in the page; auditors explore the public
 * ledger. Hash routes: #/signin, #/ (IMVUs), #/imvu/<name>, #/imvu/<name>/revenue, #/trust,
 * #/ledger, #/ledger/<index>.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./style.css";
import { getIdentity, getMeta, setMeta, type StoredIdentity } from "./lib/db.ts";
import { SignIn } from "./pages/signin.tsx";
import { Home } from "./pages/home.tsx";
import { ImvuPage } from "./pages/imvu.tsx";
import { Revenue } from "./pages/revenue.tsx";
import { Trust } from "./pages/trust.tsx";
import { Ledger, LedgerEntry } from "./pages/ledger.tsx";

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = (): void => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

/** Navigates to a hash route. */
export function go(hash: string): void {
  location.hash = hash;
}

function App() {
  const hash = useHash();
  const [me, setMe] = useState<StoredIdentity | undefined>();
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    void (async () => {
      const id = await getMeta<string>("current");
      if (id !== undefined) setMe(await getIdentity(id));
      setLoaded(true);
    })();
  }, []);
  useEffect(() => {
    // Move focus to the new page's heading, so keyboard and screen-reader users land on it.
    document.querySelector<HTMLElement>("main h1")?.focus();
  }, [hash, loaded]);
  const choose = async (i: StoredIdentity | undefined): Promise<void> => {
    await setMeta("current", i?.id);
    setMe(i);
  };
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let page;
  if (!loaded) page = <p>Loading…</p>;
  else if (parts[0] === "ledger" && parts[1]) page = <LedgerEntry index={parts[1]} />;
  else if (parts[0] === "ledger") page = <Ledger me={me} />;
  else if (parts[0] === "trust") page = <Trust me={me} />;
  else if (parts[0] === "signin" || me === undefined) page = <SignIn me={me} onChoose={choose} />;
  else if (parts[0] === "imvu" && parts[1] && parts[2] === "revenue") page = <Revenue me={me} name={parts[1]} />;
  else if (parts[0] === "imvu" && parts[1]) page = <ImvuPage me={me} name={parts[1]} />;
  else page = <Home me={me} />;
  const current = (p: string): "page" | undefined => (parts[0] === p || (p === "" && parts[0] === "") ? "page" : undefined);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header>
        <p class="brand">Nexus COS</p>
        <nav aria-label="Main">
          <ul>
            <li><a href="#/" aria-current={current("")}>IMVUs</a></li>
            <li><a href="#/trust" aria-current={current("trust")}>Trust</a></li>
            <li><a href="#/ledger" aria-current={current("ledger")}>Ledger explorer</a></li>
            <li><a href="#/signin" aria-current={current("signin")}>{me ? "Identity" : "Sign in"}</a></li>
          </ul>
        </nav>
        <p class="whoami" data-testid="whoami">
          {me ? <>Signed in as <code title={me.id}>{me.name ?? me.id.slice(0, 14) + "…"}</code></> : "Not signed in"}
        </p>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
      <footer>
        <p>Keys stay in this browser (non-extractable WebCrypto keys in IndexedDB). Every answer is verified here, not on the server's word.</p>
      </footer>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
