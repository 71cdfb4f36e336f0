// Syncs every constituent into this browser's IndexedDB with skysync-web: one consent (SkyAuth),
// the tokens kept in IndexedDB (a SkyTokenStore with compare-and-swap), and SkySync handing each
// page of records to one IndexedDB transaction together with its bookmark, so the next sync
// fetches only what changed.
//
// Serve this directory with the package's skysync_web.js and skysync_web_bg.wasm beside it, and a
// config.json: a SkyAuthConfig ({ clientId, subscriptionKey, … }; redirectUri defaults to this
// page, which must be registered with the application). Keep such a page to an admin's own
// machine if the config holds the application's secret.
import init, { SkyAuth, SkySync } from "./skysync_web.js";

const $ = (id) => document.getElementById(id);

/** Runs one IndexedDB request to its end. */
const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

/** Waits for a transaction to commit. */
const committed = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
  });

function openDb() {
  const request = indexedDB.open("skysync-example", 1);
  request.onupgradeneeded = () => {
    request.result.createObjectStore("constituents", { keyPath: "id" });
    request.result.createObjectStore("state");
  };
  return done(request);
}

/** A SkyTokenStore in IndexedDB: the compare and the write happen in one readwrite
 * transaction, which IndexedDB runs alone, so two tabs cannot both win. */
class IdbTokenStore {
  constructor(db) {
    this.db = db;
  }
  async load() {
    const record = await done(this.db.transaction("state").objectStore("state").get("tokens"));
    return record ?? null;
  }
  save(json, expectedGeneration) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction("state", "readwrite");
      const state = tx.objectStore("state");
      let generation = null;
      state.get("tokens").onsuccess = (e) => {
        const found = e.target.result ? e.target.result.generation : null;
        if (found !== expectedGeneration) {
          const conflict = new Error(`the store holds generation ${found}, not ${expectedGeneration}`);
          conflict.name = "ConflictError";
          tx.abort();
          reject(conflict);
          return;
        }
        generation = (found ?? 0) + 1;
        state.put({ json, generation }, "tokens");
      };
      // After a conflict this rejection comes second and changes nothing.
      committed(tx).then(() => resolve(generation), reject);
    });
  }
}

/** One page: its rows and its bookmark in one transaction. */
function commitPage(db, rows, bookmark) {
  const tx = db.transaction(["constituents", "state"], "readwrite");
  const table = tx.objectStore("constituents");
  for (const row of rows) table.put(row);
  tx.objectStore("state").put(bookmark, "constituents.bookmark");
  return committed(tx);
}

async function syncNow(db, auth) {
  $("sync").disabled = true;
  $("status").textContent = "Syncing…";
  try {
    const bookmark = await done(db.transaction("state").objectStore("state").get("constituents.bookmark"));
    const sync = new SkySync(auth, { entity: "constituents" });
    const result = await sync.run(bookmark ?? null, (rows, pageBookmark) => commitPage(db, rows, pageBookmark));
    const stored = await done(db.transaction("constituents").objectStore("constituents").count());
    $("result").textContent = `synced ${result.rows} constituents, ${stored} stored`;
    $("result").hidden = false;
    $("status").textContent = `Up to date (${result.mode} sync, ${result.calls} calls).`;
  } finally {
    $("sync").disabled = false;
  }
}

function showError(e) {
  // e.name is a SkyErrorName for skysync-web's errors; the message never holds a secret.
  $("error").textContent = `${e.name}: ${e.message}`;
  $("error").hidden = false;
  $("status").textContent = "Stopped.";
}

async function main() {
  await init();
  const config = await (await fetch("config.json")).json();
  config.redirectUri ??= location.origin + location.pathname;
  const db = await openDb();
  const store = new IdbTokenStore(db);

  if (SkyAuth.isRedirect(location.href)) {
    const back = location.href;
    history.replaceState(null, "", location.pathname); // the code leaves the address bar
    const consent = new SkyAuth(config);
    await consent.handleRedirect(back);
    const current = await store.load();
    await store.save(SkyAuth.storeRecord(consent.exportBundle()), current ? current.generation : null);
    consent.clearStorage();
  }
  if (!(await store.load())) {
    $("status").textContent = "Not connected yet.";
    $("connect").hidden = false;
    $("connect").onclick = () => location.assign(new SkyAuth(config).authorizeUrl());
    return;
  }
  const auth = SkyAuth.withStore(config, store);
  $("sync").hidden = false;
  $("sync").onclick = () => syncNow(db, auth).catch(showError);
  await syncNow(db, auth);
}

main()
  .catch(showError)
  .finally(() => document.body.setAttribute("data-ready", ""));
