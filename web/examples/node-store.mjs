// Keeps a SKY API grant alive from Node 18+ with the skysync-web package and a token store of the
// app's own: here a JSON file (compare-and-swap on its generation, written atomically). SkyAuth
// applies the CLI's policy through it: routine refreshes keep the refresh token, one inside the
// renewal window rotates it (saving the rotation intent first), concurrent callers share one
// refresh.
//
//   SKYSYNC_CLIENT_ID=… SKYSYNC_CLIENT_SECRET=… SKYSYNC_SUBSCRIPTION_KEY=… SKYSYNC_REDIRECT_URI=… \
//   [SKYSYNC_TOKEN_URL=… SKYSYNC_API_URL=…] node node-store.mjs BUNDLE STORE_FILE
//
// BUNDLE seeds STORE_FILE when it does not exist yet (`skysync export bundle.json` hands a
// profile's tokens over). Each save is logged on stderr. One process per store file: across
// processes, use a store with a real compare-and-swap (a database row's generation column).
import { open, readFile, rename } from "node:fs/promises";
import { SkyAuth } from "skysync-web";

class FileStore {
  constructor(path) {
    this.path = path;
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
    const tmp = `${this.path}.${process.pid}.tmp`;
    const file = await open(tmp, "wx", 0o600);
    try {
      await file.writeFile(JSON.stringify({ json, generation }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const intent = JSON.parse(json).rotation_started_at ? " (rotation intent)" : "";
    console.error(`saved generation ${generation}${intent}`);
    return generation;
  }
}

const [bundleFile, storeFile] = process.argv.slice(2);
if (!bundleFile || !storeFile) {
  console.error("usage: node node-store.mjs BUNDLE STORE_FILE");
  process.exit(2);
}
const env = (name) => process.env[name] || undefined;
try {
  const store = new FileStore(storeFile);
  if (!(await store.load())) {
    await store.save(SkyAuth.storeRecord(await readFile(bundleFile, "utf8")), null);
  }
  const auth = SkyAuth.withStore(
    {
      clientId: env("SKYSYNC_CLIENT_ID"),
      clientSecret: env("SKYSYNC_CLIENT_SECRET"),
      redirectUri: env("SKYSYNC_REDIRECT_URI") ?? "http://localhost:8321/callback",
      subscriptionKey: env("SKYSYNC_SUBSCRIPTION_KEY"),
      authorizeUrl: env("SKYSYNC_AUTH_URL"),
      tokenUrl: env("SKYSYNC_TOKEN_URL"),
      apiUrl: env("SKYSYNC_API_URL"),
    },
    store,
  );
  // Two callers at once share one refresh.
  const [a, b] = await Promise.all([auth.accessToken(), auth.accessToken()]);
  if (a !== b) throw new Error("two access tokens for concurrent callers");
  const page = await auth.apiGet("/constituent/v1/constituents?limit=10");
  console.log(`access token ok, ${page.value.length} constituents on the first page`);
} catch (e) {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
}
