// Reads every constituent (inactive and deceased ones too) through the skysync-web npm package in
// Node 18+, with the tokens of a bundle (`skysync export bundle.json`, or the consent page's
// download), and prints `fetched N constituents`. It pages by hand with apiGet; node-sync.mjs
// lets SkySync do it.
//
//   SKYSYNC_CLIENT_ID=… SKYSYNC_CLIENT_SECRET=… SKYSYNC_SUBSCRIPTION_KEY=… SKYSYNC_REDIRECT_URI=… \
//   [SKYSYNC_TOKEN_URL=… SKYSYNC_API_URL=…] node node-api.mjs bundle.json
//
// The tokens live only in this process: a real app saves auth.exportBundle() after refreshes
// (or keeps them in a store: node-store.mjs).
import { readFileSync } from "node:fs";
import { SkyAuth } from "skysync-web";
import { configFromEnv, runMain } from "./node-common.mjs";

const file = process.argv[2];
if (!file) {
  console.error("usage: node node-api.mjs BUNDLE");
  process.exit(2);
}
await runMain(async () => {
  const auth = new SkyAuth(configFromEnv());
  const info = auth.restoreBundle(readFileSync(file, "utf8"));
  console.error(`tokens for ${info.environment}, refresh token valid until ${info.refreshExpiresAt}`);
  // SKY's next_link may drop the list's filters, so they go onto every page again.
  const filters = { include_inactive: "true", include_deceased: "true" };
  let count = 0;
  for (let path = "/constituent/v1/constituents?limit=20&include_inactive=true&include_deceased=true"; path; ) {
    const page = await auth.apiGet(path);
    count += page.value.length;
    path = page.next_link && withFilters(page.next_link, filters);
  }
  console.log(`fetched ${count} constituents`);
});

function withFilters(link, filters) {
  const url = new URL(link);
  for (const [name, value] of Object.entries(filters)) url.searchParams.set(name, value);
  return url.toString();
}
