// What the Node examples share: the SkyAuth configuration from the `SKYSYNC_*` variables the
// `skysync` CLI reads, and a token store in a JSON file (compare-and-swap on its generation,
// written atomically, 0600).
//
// One process per store file: across processes, use a store with a real compare-and-swap (a
// database row's generation column).
import { open, readFile, rename } from "node:fs/promises";
import { SkyAuth } from "skysync-web";

/** A SkyAuthConfig from the environment: the same names the CLI uses. */
export function configFromEnv() {
  const env = (name) => process.env[name] || undefined;
  return {
    clientId: env("SKYSYNC_CLIENT_ID"),
    clientSecret: env("SKYSYNC_CLIENT_SECRET"),
    redirectUri: env("SKYSYNC_REDIRECT_URI") ?? "http://localhost:8321/callback",
    subscriptionKey: env("SKYSYNC_SUBSCRIPTION_KEY"),
    authorizeUrl: env("SKYSYNC_AUTH_URL"),
    tokenUrl: env("SKYSYNC_TOKEN_URL"),
    apiUrl: env("SKYSYNC_API_URL"),
  };
}

/** Writes `text` to `path` atomically: a new 0600 file, fsynced, renamed over the old one. */
export async function writeFileAtomic(path, text) {
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, "wx", 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** A SkyTokenStore in a JSON file. With `log`, each save is reported on stderr. */
export class FileStore {
  constructor(path, { log = false } = {}) {
    this.path = path;
    this.log = log;
  }

  async load() {
    try {
      const { json, generation } = JSON.parse(await readFile(this.path, "utf8"));
      return { json, generation };
    } catch (e) {
      if (e.code === "ENOENT") return null;
      throw e;
    }
  }

  async save(json, expectedGeneration) {
    const current = await this.load();
    const found = current ? current.generation : null;
    if (found !== expectedGeneration) {
      const e = new Error(`the store holds generation ${found}, not ${expectedGeneration}`);
      e.name = "ConflictError";
      throw e;
    }
    const generation = (found ?? 0) + 1;
    await writeFileAtomic(this.path, JSON.stringify({ json, generation }));
    if (this.log) {
      const intent = JSON.parse(json).rotation_started_at ? " (rotation intent)" : "";
      console.error(`saved generation ${generation}${intent}`);
    }
    return generation;
  }
}

/** A SkyAuth keeping its tokens in `storeFile`, seeded from `bundleFile` (`skysync export`)
 * when the store is still empty. */
export async function authWithFileStore(bundleFile, storeFile, options) {
  const store = new FileStore(storeFile, options);
  if (!(await store.load())) {
    await store.save(SkyAuth.storeRecord(await readFile(bundleFile, "utf8")), null);
  }
  return SkyAuth.withStore(configFromEnv(), store);
}

/** Runs `main`, turning a failure into one line on stderr and exit status 1. Errors from
 * skysync-web carry a stable `name` (SkyErrorName); their message never holds a secret. */
export async function runMain(main) {
  try {
    await main();
  } catch (e) {
    console.error(`${e.name}: ${e.message}`);
    process.exit(1);
  }
}
