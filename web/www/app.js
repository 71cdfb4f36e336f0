// The consent page: UI only. Every OAuth decision (PKCE, state, the exchange, the bundle) is made
// by skysync-core through the SkyAuth bindings. Text from servers is only ever set as textContent.
import init, { SkyAuth } from "./pkg/skysync_web.js";

// sessionStorage (this tab only), under SkyAuth's default prefix so auth.clearStorage() removes it.
const FORM_KEY = "skysync.page.form";
// localStorage, only when the user ticks "Remember"; never holds the secret or the key.
const REMEMBER_KEY = "skysync.page.remembered";
// sessionStorage: the recipient of a `skysync import --prepare` link, kept across the visit to
// Blackbaud (the fragment does not come back with the redirect). Public values, not secrets.
const SEAL_KEY = "skysync.page.seal";
const FIELDS = {
  clientId: "client-id", redirectUri: "redirect-uri", clientSecret: "client-secret",
  subscriptionKey: "subscription-key", environmentId: "environment-id",
  authorizeUrl: "authorize-url", tokenUrl: "token-url", apiUrl: "api-url",
};
const REMEMBERED = ["clientId", "redirectUri", "environmentId", "authorizeUrl", "tokenUrl", "apiUrl"];
const TEST_PATH = "/constituent/v1/constituents?limit=1";

const $ = (id) => document.getElementById(id);
let bundleText = "";
let countdown = 0;

// The redirect back from Blackbaud carries a one-time code: take it out of the address bar (and so
// out of the history, bookmarks and a copied link) at once, before the wasm loads, so that it does
// not stay there when loading or the exchange fails. The page itself never needs a query.
const landing = location.href;
if (location.search || location.hash) history.replaceState(null, "", location.pathname);

function show(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}
const status = (text) => show("status", text);
function showError(e) {
  status("");
  show("error", e && e.name ? `${e.name}: ${e.message}` : String(e));
}

function readForm() {
  const config = {};
  for (const [key, id] of Object.entries(FIELDS)) {
    const v = $(id).value.trim();
    if (v) config[key] = v;
  }
  return config;
}

function fillForm(values) {
  for (const [key, id] of Object.entries(FIELDS)) {
    $(id).value = typeof values[key] === "string" ? values[key] : "";
  }
  if (values.authorizeUrl || values.tokenUrl || values.apiUrl) $("endpoints").open = true;
}

function pick(config, keys) {
  return Object.fromEntries(keys.filter((k) => config[k]).map((k) => [k, config[k]]));
}

function authorize(event) {
  event.preventDefault();
  show("error", "");
  const config = readForm();
  try {
    const auth = new SkyAuth(config);
    if ($("remember").checked) {
      localStorage.setItem(REMEMBER_KEY, JSON.stringify(pick(config, REMEMBERED)));
    } else {
      localStorage.removeItem(REMEMBER_KEY);
    }
    // Survives the visit to Blackbaud; removed right after the exchange.
    sessionStorage.setItem(FORM_KEY, JSON.stringify(config));
    const url = auth.authorizeUrl();
    status("Opening Blackbaud's consent page…");
    location.assign(url);
  } catch (e) {
    showError(e);
  }
}

async function handleReturn(returned) {
  const saved = sessionStorage.getItem(FORM_KEY);
  // The form (secret included) only had to survive the visit to Blackbaud: from here on it lives
  // only in memory, in this function and the SkyAuth object.
  sessionStorage.removeItem(FORM_KEY);
  let config;
  try {
    config = JSON.parse(saved);
  } catch {
    config = null;
  }
  if (!config || typeof config !== "object") {
    showError({ name: "NoPendingAuthorizationError",
      message: "this tab did not start a consent (or already finished it); fill in the form and authorize again" });
    return;
  }
  fillForm({ ...config, clientSecret: "", subscriptionKey: "" });
  let auth;
  try {
    auth = new SkyAuth(config);
  } catch (e) {
    showError(e);
    return;
  }
  $("setup").hidden = true;
  status("Exchanging the authorization code…");
  try {
    const info = await auth.handleRedirect(returned);
    showTokens(auth, info, Boolean(config.subscriptionKey));
  } catch (e) {
    if (e.name === "TokenEndpointUnreachableError") {
      showCodeBundle(auth);
    } else {
      $("setup").hidden = false;
      showError(e);
    }
  }
}

// A link from `skysync import --prepare` carries the importing machine's one-time public key in
// its fragment (never sent to a server): keep it for the return from Blackbaud.
function rememberRecipient(url) {
  const params = new URLSearchParams(new URL(url).hash.slice(1));
  const recipient = params.get("skysync-recipient");
  const nonce = params.get("skysync-nonce");
  if (recipient === null && nonce === null) {
    sessionStorage.removeItem(SEAL_KEY);
    return;
  }
  try {
    const fingerprint = SkyAuth.recipientFingerprint(recipient || "", nonce || "");
    sessionStorage.setItem(SEAL_KEY, JSON.stringify({ recipient, nonce }));
    show("seal-note", `The bundle will be encrypted for the machine that printed this link (key ${fingerprint}): ` +
      "only skysync import there can open it.");
  } catch (e) {
    showError(e);
  }
}

// The bundle to hand out: sealed to the prepared recipient when the consent started from its link.
function exportForImport(auth) {
  const plain = auth.exportBundle();
  let seal = null;
  try {
    seal = JSON.parse(sessionStorage.getItem(SEAL_KEY) || "null");
  } catch { /* not ours */ }
  if (!seal || typeof seal.recipient !== "string" || typeof seal.nonce !== "string") return plain;
  const sealed = SkyAuth.sealBundle(plain, seal.recipient, seal.nonce);
  show("seal-note", "The bundle is encrypted for the machine that printed the link (key " +
    `${SkyAuth.recipientFingerprint(seal.recipient, seal.nonce)}); only skysync import there can open it.`);
  return sealed;
}

function showResult(auth) {
  bundleText = exportForImport(auth);
  $("bundle").textContent = bundleText;
  $("result").hidden = false;
  $("result-title").focus();
  $("download").addEventListener("click", () => download(auth));
  $("copy").addEventListener("click", () => copy(auth));
}

function showTokens(auth, info, canTest) {
  status("");
  $("result-title").textContent = "Connected";
  $("environment").textContent = info.environment;
  $("user").textContent = info.user;
  const expires = new Date(info.refreshExpiresAt);
  const days = Math.round((expires - Date.now()) / 86_400_000);
  const utc = info.refreshExpiresAt.replace(/\.\d+/, "");
  $("refresh-expires").textContent =
    `${expires.toLocaleDateString(undefined, { dateStyle: "long" })}, in ${days} days (${utc})`;
  showResult(auth);
  if (canTest) {
    $("test-call").hidden = false;
    $("test-call").addEventListener("click", () => testCall(auth));
  }
}

function showCodeBundle(auth) {
  status("");
  const expiresAt = new Date(auth.codeExpiresAt);
  $("result-title").textContent = "Consent received: import the code bundle within 5 minutes";
  // Who consented and until when is only known once skysync has exchanged the code.
  $("identity").hidden = true;
  showResult(auth);
  const tick = () => {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    show("code-warning", left > 0
      ? "This browser could not get tokens from the token endpoint (usually because it does not allow " +
        "cross-origin requests). The bundle holds the one-time " +
        `authorization code instead of tokens: run skysync import with it within ${mmss} ` +
        `(before ${expiresAt.toLocaleTimeString()}). skysync exchanges it with the application secret configured there.`
      : "The authorization code has expired (codes live 5 minutes). Reload the page and authorize again.");
    if (left === 0) {
      clearInterval(countdown);
      // An expired code is useless: do not offer it any more.
      for (const id of ["download", "copy"]) $(id).disabled = true;
      $("bundle").textContent = "";
      bundleText = "";
    }
  };
  tick();
  countdown = setInterval(tick, 1000);
}

function exported(auth, how) {
  // The bundle is out: nothing secret needs to stay in this tab's storage.
  auth.clearStorage();
  show("export-note", `${how}. This tab's sessionStorage has been cleared.`);
}

function download(auth) {
  const blob = new Blob([bundleText], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "skysync-bundle.json";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  exported(auth, "Downloaded skysync-bundle.json");
}

async function copy(auth) {
  try {
    await navigator.clipboard.writeText(bundleText);
    exported(auth, "Copied to the clipboard");
  } catch {
    // No clipboard access (insecure context, or denied): select the text for a manual copy.
    $("bundle").parentElement.open = true;
    getSelection().selectAllChildren($("bundle"));
    show("export-note", "Could not use the clipboard: the bundle is selected, press Ctrl+C (⌘C).");
  }
}

async function testCall(auth) {
  show("test-result", "Calling " + TEST_PATH + "…");
  try {
    const page = await auth.apiGet(TEST_PATH);
    show("test-result", `API call succeeded: ${page.count ?? "?"} constituents in the environment.`);
  } catch (e) {
    show("test-result", `API call failed: ${e.name}: ${e.message}`);
  }
}

document.addEventListener("securitypolicyviolation", (e) => {
  if (e.effectiveDirective === "connect-src") {
    showError({ name: "ContentSecurityPolicy", message: `this page's Content-Security-Policy does not allow ` +
      `connecting to ${e.blockedURI}. Rebuild with SKYSYNC_CSP_CONNECT_SRC_EXTRA="${new URL(e.blockedURI).origin}" web/build.sh` });
  }
});

async function main() {
  // Before the wasm loads: the Authorize button stays disabled (so the form cannot be submitted
  // natively, and a pressed Enter does nothing) until the handler below can act on it.
  $("setup").addEventListener("submit", authorize);
  restoreRemembered();
  if (!$("redirect-uri").value) $("redirect-uri").value = location.origin + location.pathname;
  await init();
  $("authorize").disabled = false;
  if (SkyAuth.isRedirect(landing)) await handleReturn(landing);
  else {
    notARedirect(landing);
    rememberRecipient(landing);
  }
  document.body.dataset.ready = "true";
}

// A visit that is not a redirect to check: a consent left halfway (Back from Blackbaud), or an
// error sent back without this tab's state.
function notARedirect(url) {
  const saved = sessionStorage.getItem(FORM_KEY);
  if (saved !== null) {
    // The secret must not wait in sessionStorage for a redirect that will not come.
    sessionStorage.removeItem(FORM_KEY);
    try {
      fillForm(pick(JSON.parse(saved), REMEMBERED));
    } catch { /* not ours */ }
  }
  const error = new URL(url).searchParams.get("error");
  if (error !== null) {
    // Without the state anyone could have written it, so only a plain error code is shown (as
    // the core does for redirects), never a description.
    const code = /^[a-z_]{1,40}$/.test(error) ? ` "${error}"` : "";
    showError({ name: "AuthorizationError", message: `Blackbaud sent the browser back with the error${code} but ` +
      "without this tab's state, so nothing more is shown. Check the application ID and that the redirect URI is " +
      "registered exactly as above, then authorize again." });
  }
}

// Only the non-secret fields, even if something else wrote more under the key; a value that is not
// ours (or storage that is switched off) must not keep the page from working.
function restoreRemembered() {
  try {
    const remembered = JSON.parse(localStorage.getItem(REMEMBER_KEY) || "null");
    if (remembered && typeof remembered === "object") {
      fillForm(pick(remembered, REMEMBERED));
      $("remember").checked = true;
    }
  } catch {
    try { localStorage.removeItem(REMEMBER_KEY); } catch { /* storage disabled */ }
  }
}

main().catch(showError);
