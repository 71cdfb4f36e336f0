// Syncs every constituent (inactive and deceased ones too) from the SKY API into memory with
// skysync-web's SkySync, keeping the tokens in a file (node-common.mjs) and the sync's bookmark
// in another, so the next run fetches only what changed since. Prints `synced N constituents`
// (N: the records this run received).
//
//   SKYSYNC_CLIENT_ID=… SKYSYNC_CLIENT_SECRET=… SKYSYNC_SUBSCRIPTION_KEY=… \
//   [SKYSYNC_REDIRECT_URI=… SKYSYNC_TOKEN_URL=… SKYSYNC_API_URL=…] node node-sync.mjs BUNDLE [STATE_DIR]
//
// BUNDLE seeds STATE_DIR/tokens.json when it does not exist yet (`skysync export bundle.json`
// hands a profile's tokens over). STATE_DIR (default: the current directory) also keeps
// constituents.bookmark.
//
// SkySync does the SKY API's part (paging, next_link with the filters put back, pacing, 429s and
// the quota, one refresh on a 401); storing is the app's. A real app commits each page's rows and
// its bookmark in one transaction; this one keeps the rows in a Map and writes the bookmark after
// each page, so its "storage" only lives as long as the process.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SkySync } from "skysync-web";
import { authWithFileStore, runMain, writeFileAtomic } from "./node-common.mjs";

const [bundleFile, stateDir = "."] = process.argv.slice(2);
if (!bundleFile) {
  console.error("usage: node node-sync.mjs BUNDLE [STATE_DIR]");
  process.exit(2);
}

await runMain(async () => {
  const auth = await authWithFileStore(bundleFile, join(stateDir, "tokens.json"));
  const bookmarkFile = join(stateDir, "constituents.bookmark");
  const bookmark = await readFile(bookmarkFile, "utf8").catch((e) => {
    if (e.code === "ENOENT") return null;
    throw e;
  });

  const rows = new Map();
  const sync = new SkySync(auth, { entity: "constituents" });
  const result = await sync.run(bookmark, async (page, pageBookmark) => {
    for (const row of page) rows.set(row.id, row);
    await writeFileAtomic(bookmarkFile, pageBookmark);
  });
  console.error(`${result.mode} run: ${result.pages} pages, ${result.calls} calls`);
  console.log(`synced ${rows.size} constituents`);
});
