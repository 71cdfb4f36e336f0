// Keeps a SKY API grant alive from Node 18+ with the skysync-web package and a token store of the
// app's own: here a JSON file (FileStore in node-common.mjs: compare-and-swap on its generation,
// written atomically). SkyAuth applies the CLI's policy through it: routine refreshes keep the
// refresh token, one inside the renewal window rotates it (saving the rotation intent first),
// concurrent callers share one refresh.
//
//   SKYSYNC_CLIENT_ID=… SKYSYNC_CLIENT_SECRET=… SKYSYNC_SUBSCRIPTION_KEY=… SKYSYNC_REDIRECT_URI=… \
//   [SKYSYNC_TOKEN_URL=… SKYSYNC_API_URL=…] node node-store.mjs BUNDLE STORE_FILE
//
// BUNDLE seeds STORE_FILE when it does not exist yet (`skysync export bundle.json` hands a
// profile's tokens over). Each save is logged on stderr. One process per store file.
import { authWithFileStore, runMain } from "./node-common.mjs";

const [bundleFile, storeFile] = process.argv.slice(2);
if (!bundleFile || !storeFile) {
  console.error("usage: node node-store.mjs BUNDLE STORE_FILE");
  process.exit(2);
}
await runMain(async () => {
  const auth = await authWithFileStore(bundleFile, storeFile, { log: true });
  // Two callers at once share one refresh.
  const [a, b] = await Promise.all([auth.accessToken(), auth.accessToken()]);
  if (a !== b) throw new Error("two access tokens for concurrent callers");
  const page = await auth.apiGet("/constituent/v1/constituents?limit=10");
  console.log(`access token ok, ${page.value.length} constituents on the first page`);
});
