// The token-store contract of `SkyAuth.withStore`, checked against a live SKY API (the
// simulator): the same module runs in Node (tests/it/js_store_contract.rs, through the packed npm
// package) and in headless Chromium (the browser-sync example's page imports it).
//
// `storeContract(SkyAuth, config, records)` takes the package's SkyAuth class, a SkyAuthConfig
// for the simulator and two store records (`SkyAuth.storeRecord` JSON), both inside the renewal
// window with an expired access token (so the next refresh rotates):
//   records.conflict   another writer rotates first: the session re-reads, never overwrites;
//   records.unsaved    the store fails after the rotation: the new refresh token is reported
//                      (RotationLostError), its intent was saved before sending, and a later
//                      SkyAuth over the same store reports the lost rotation.
// It throws on the first broken promise of the contract, and resolves to what the caller checks
// against the simulator (which refresh tokens it holds).

/** A store over one shared record, like two processes over one database row. */
class SharedRecord {
  constructor(json) {
    this.record = { json, generation: 1 };
    this.saves = [];
  }
}

/** A compare-and-swap store over a SharedRecord. `beforeSave` runs before each save. */
class CasStore {
  constructor(shared, beforeSave = async () => {}) {
    this.shared = shared;
    this.beforeSave = beforeSave;
  }
  async load() {
    return this.shared.record && { ...this.shared.record };
  }
  async save(json, expectedGeneration) {
    await this.beforeSave(json);
    const found = this.shared.record ? this.shared.record.generation : null;
    if (found !== expectedGeneration) {
      const e = new Error(`generation ${found}, not ${expectedGeneration}`);
      e.name = "ConflictError";
      throw e;
    }
    this.shared.record = { json, generation: (found ?? 0) + 1 };
    this.shared.saves.push(JSON.parse(json));
    return this.shared.record.generation;
  }
}

function check(condition, what) {
  if (!condition) throw new Error(`store contract: ${what}`);
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("store contract: expected a rejection, the call succeeded");
}

function latch() {
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  return { open, opened };
}

const refreshTokenOf = (json) => JSON.parse(json).refresh_token;

/** Writer A reads generation 1 and wants to rotate; writer B rotates first. A's intent save
 * conflicts, so A sends nothing; A's next call re-reads B's tokens and uses them. */
async function conflict(SkyAuth, config, json) {
  const shared = new SharedRecord(json);
  const aSaving = latch();
  const bDone = latch();
  let first = true;
  const storeA = new CasStore(shared, async () => {
    if (first) {
      first = false;
      aSaving.open();
      await bDone.opened;
    }
  });
  const a = SkyAuth.withStore(config, storeA);
  const b = SkyAuth.withStore(config, new CasStore(shared));

  const aFirst = a.accessToken();
  await aSaving.opened;
  const bToken = await b.accessToken();
  const afterB = { ...shared.record };
  check(afterB.generation === 3, `B saved its intent and its rotation (generation ${afterB.generation})`);
  bDone.open();

  const e = await rejection(aFirst);
  check(e.name === "StorageError", `A's conflict is a StorageError, not ${e.name}: ${e.message}`);
  check(/changed underneath/.test(e.message), `the message names the conflict: ${e.message}`);
  check(shared.record.generation === 3 && shared.record.json === afterB.json, "A did not overwrite B's record");

  const aToken = await a.accessToken();
  check(aToken === bToken, "A re-read the store and uses B's access token");
  check(shared.record.generation === 3, "A's second call saved nothing");
  return { storedRefreshToken: refreshTokenOf(shared.record.json), originalRefreshToken: refreshTokenOf(json) };
}

/** The store accepts the rotation intent, then fails: the rotated refresh token is reported,
 * kept in the SkyAuth object, and a later SkyAuth over the store reports the lost rotation. */
async function unsaved(SkyAuth, config, json) {
  const shared = new SharedRecord(json);
  let broken = false;
  const store = new CasStore(shared, async (saving) => {
    if (broken) throw new Error("disk full");
    if (JSON.parse(saving).rotation_started_at) broken = true;
  });
  const a = SkyAuth.withStore(config, store);
  const e = await rejection(a.accessToken());
  check(e.name === "RotationLostError", `a failed save after a rotation is a RotationLostError, not ${e.name}: ${e.message}`);
  check(/exportBundle/.test(e.message), `the message says where the new tokens are: ${e.message}`);
  check(!/[A-Za-z0-9_-]{40,}/.test(e.message), "the message holds no token");

  check(shared.saves.length === 1, `only the intent was saved (${shared.saves.length} saves)`);
  const intent = shared.saves[0];
  check(intent.rotation_started_at, "the rotation intent was saved before the rotation was sent");
  check(intent.refresh_token === refreshTokenOf(json), "the intent keeps the refresh token sent");
  const kept = JSON.parse(SkyAuth.storeRecord(a.exportBundle()));
  check(kept.refresh_token !== refreshTokenOf(json), "exportBundle() holds the rotated refresh token");

  // Nobody kept it: a later process (a new SkyAuth over the repaired store) finds the intent,
  // and the refresh token it holds was rotated away.
  broken = false;
  const copy = new SharedRecord(shared.record.json);
  const later = SkyAuth.withStore(config, new CasStore(copy));
  const lost = await rejection(later.accessToken());
  check(lost.name === "RotationLostError", `the lost rotation is a RotationLostError, not ${lost.name}: ${lost.message}`);
  check(/rotated at/.test(lost.message), `the message says when the rotation was sent: ${lost.message}`);
  const again = await rejection(later.accessToken());
  check(again.name === "RotationLostError", `and stays reported: ${again.name}`);

  // The app that kept exportBundle() recovers: the rescued tokens go into the store.
  await store.save(SkyAuth.storeRecord(a.exportBundle()), shared.record.generation);
  const recovered = SkyAuth.withStore(config, new CasStore(shared));
  const token = await recovered.accessToken();
  check(typeof token === "string" && token.length > 0, "the rescued tokens work");
  return { rotatedRefreshToken: kept.refresh_token, originalRefreshToken: refreshTokenOf(json) };
}

export async function storeContract(SkyAuth, config, records) {
  return {
    conflict: await conflict(SkyAuth, config, records.conflict),
    unsaved: await unsaved(SkyAuth, config, records.unsaved),
  };
}
