// The consent page: UI only. Every OAuth decision (PKCE, state, the exchange, the bundle) is made
// by skysync-core through the SkyAuth bindings. Text from servers is only ever set as textContent.
// The words people read live here and in index.html, not in the wasm: errors arrive with a stable
// name (SkyErrorName) and the core's technical message, which only goes into a details line.
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
const AGAIN = "Enter the secret again and press the button below.";
const TELL = "If it happens again, send the details line below to the person who runs skysync.";

// What happened and what to do, by error name. The technical text stays in the details line.
const ERRORS = {
  ConsentDeniedError: ["You cancelled at Blackbaud (or Blackbaud refused the consent).", AGAIN],
  InvalidClientError: ["Blackbaud did not accept the application ID or the secret.",
    "Copy both again from the application's page in the developer portal, then press the button below."],
  StateMismatchError: ["This answer from Blackbaud does not belong to the consent started in this tab " +
    "(an old or repeated link).", "Start again: " + AGAIN],
  NoPendingAuthorizationError: ["Blackbaud sent you back, but this tab has no consent in progress: it was " +
    "already finished here, or started in another tab.",
    "If you saved the bundle, you are done. Otherwise fill in the form and start again."],
  InvalidRedirectError: ["Blackbaud's answer could not be read.", "Start again: " + AGAIN],
  ConsentRequiredError: ["Blackbaud did not accept the consent: it was already used or has expired.",
    "Start again: " + AGAIN],
  TokenEndpointError: ["Blackbaud answered with an error while finishing the connection.",
    "Wait a minute, then start again. " + TELL],
  NoRefreshTokenError: ["Blackbaud gave access for one hour only, not the lasting access skysync needs. " +
    "That happens when no secret is given, or the application has none.",
    "Enter the application secret and press the button below."],
  ConfigError: ["A setting is missing or not valid.", "Check the fields below."],
  StorageError: ["This browser does not let the page remember the consent in progress (site data is " +
    "switched off for this page).", "Allow site data for this page, or use another browser, then start again."],
  BundleError: ["The bundle could not be made.", "Start again. " + TELL],
  AuthorizationError: ["Blackbaud sent you back with an error, for a consent this tab did not start.",
    "Check the application ID, and that the application lists the return address exactly as shown below. " +
    "Then press the button below."],
  ContentSecurityPolicy: ["This page is not allowed to contact that server.",
    "Ask the person who runs skysync to rebuild the page for it (see the details)."],
  PageLoadError: ["This page could not load its WebAssembly part, so it cannot connect.",
    "Reload the page. If that does not help, use another browser (WebAssembly must be allowed) and tell the " +
    "person who runs skysync."],
};
const UNKNOWN_ERROR = ["Something went wrong.", "Start again. " + TELL];

const $ = (id) => document.getElementById(id);
let bundleText = "";
let countdown = 0;
// Whether a bundle is on the page and not yet downloaded or copied: leaving then asks first.
let unsaved = false;
// A redirect that came back while the secret was not kept (Back, then Forward to Blackbaud):
// it is exchanged once the secret is entered again.
let resumeFrom = null;

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

// The core's texts are written for the command line; the page never tells people to run
// `skysync login` (that is for the person at the server), so such a hint is left out.
function technical(e) {
  const message = String(e && e.message !== undefined ? e.message : e)
    .replace(/[;,]?\s*\(?(?:start|run|use)?\s*`skysync login[^`]*`[^;.)]*\)?/g, "");
  return e && e.name ? `${e.name}: ${message}` : message;
}

function showError(e) {
  status("");
  if (!e) {
    show("error-text", "");
    $("error").hidden = true;
    return;
  }
  const [what, todo] = ERRORS[e.name] || UNKNOWN_ERROR;
  show("error-text", `${what} ${todo}`);
  show("error-details", `Details: ${technical(e)}`);
  $("error").hidden = false;
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
  nameTheServer();
}

function pick(config, keys) {
  return Object.fromEntries(keys.filter((k) => config[k]).map((k) => [k, config[k]]));
}

// The button says where it goes: Blackbaud, or the host of another consent page.
function nameTheServer() {
  if (resumeFrom) return;
  let host = "Blackbaud";
  try {
    const url = new URL($("authorize-url").value.trim());
    if (!/(^|\.)blackbaud\.com$/.test(url.hostname)) host = url.host;
  } catch { /* empty or not yet a URL: Blackbaud's default */ }
  $("authorize").textContent = `Continue to ${host}`;
}

// Why the secret field is empty after a visit to Blackbaud.
function secretWasRemoved(why) {
  show("client-secret-empty", why ? `The secret field is empty on purpose: ${why} Enter it again.` : "");
}

function submit(event) {
  event.preventDefault();
  showError(null);
  if (resumeFrom) finishResumed();
  else authorize();
}

function authorize() {
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
  let config;
  try {
    config = JSON.parse(saved);
  } catch {
    config = null;
  }
  if (!config || typeof config !== "object") {
    sessionStorage.removeItem(FORM_KEY);
    showError({ name: "NoPendingAuthorizationError", message: "no consent in progress in this tab" });
    return;
  }
  fillForm({ ...config, clientSecret: "", subscriptionKey: "" });
  if (config.secretRemoved && !config.clientSecret) {
    // Back to the page, then Forward to Blackbaud and consent: the consent is still this tab's
    // (the PKCE verifier and state wait in sessionStorage), only the secret was not kept.
    resumeFrom = returned;
    $("authorize").textContent = "Finish connecting";
    secretWasRemoved("the page does not keep it while you are at Blackbaud.");
    show("resume-note", "Welcome back: Blackbaud has your consent. To finish, enter the application secret " +
      "again and press Finish connecting (within 5 minutes).");
    $("client-secret").focus();
    return;
  }
  // The form (secret included) only had to survive the visit to Blackbaud: from here on it lives
  // only in memory, in this function and the SkyAuth object.
  sessionStorage.removeItem(FORM_KEY);
  await exchange(config, returned);
}

function finishResumed() {
  const config = readForm();
  if (!config.clientSecret) {
    $("client-secret").focus();
    return;
  }
  const returned = resumeFrom;
  resumeFrom = null;
  sessionStorage.removeItem(FORM_KEY);
  show("resume-note", "");
  secretWasRemoved("");
  nameTheServer();
  exchange(config, returned);
}

async function exchange(config, returned) {
  let auth;
  try {
    auth = new SkyAuth(config);
  } catch (e) {
    showError(e);
    return;
  }
  $("setup").hidden = true;
  status("Finishing the connection…");
  try {
    const info = await auth.handleRedirect(returned);
    showTokens(auth, info, Boolean(config.subscriptionKey));
  } catch (e) {
    if (e.name === "TokenEndpointUnreachableError") {
      showCodeBundle(auth, e);
    } else {
      $("setup").hidden = false;
      showError(e);
      if (config.clientSecret) secretWasRemoved("the page does not keep it once you are back from Blackbaud.");
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
    // Back from Blackbaud in the middle of a sealed consent: the link's key still applies.
    if (sessionStorage.getItem(FORM_KEY)) showSealNote(sessionStorage.getItem(SEAL_KEY));
    else sessionStorage.removeItem(SEAL_KEY);
    return;
  }
  try {
    SkyAuth.recipientFingerprint(recipient || "", nonce || ""); // throws on a damaged link
    const saved = JSON.stringify({ recipient, nonce });
    sessionStorage.setItem(SEAL_KEY, saved);
    showSealNote(saved);
  } catch (e) {
    showError(e);
  }
}

function showSealNote(saved) {
  try {
    const { recipient, nonce } = JSON.parse(saved);
    show("seal-note", `The bundle will be encrypted for the machine that made your link (key ` +
      `${SkyAuth.recipientFingerprint(recipient, nonce)}): only skysync there can open it.`);
  } catch { /* none, or not ours */ }
}

// The bundle to hand out: sealed to the prepared recipient when the consent started from its link.
// Returns the bundle and the key's fingerprint (null when not sealed).
function exportForImport(auth) {
  const plain = auth.exportBundle();
  let seal = null;
  try {
    seal = JSON.parse(sessionStorage.getItem(SEAL_KEY) || "null");
  } catch { /* not ours */ }
  if (!seal || typeof seal.recipient !== "string" || typeof seal.nonce !== "string") return [plain, null];
  const sealed = SkyAuth.sealBundle(plain, seal.recipient, seal.nonce);
  return [sealed, SkyAuth.recipientFingerprint(seal.recipient, seal.nonce)];
}

function showResult(auth) {
  const [bundle, fingerprint] = exportForImport(auth);
  bundleText = bundle;
  show("seal-note", "");
  $("send-key").textContent = fingerprint || "";
  $("send-sealed").hidden = !fingerprint;
  $("send-plain").hidden = Boolean(fingerprint);
  $("bundle").textContent = bundleText;
  $("result").hidden = false;
  $("result-title").focus();
  $("download").addEventListener("click", () => download(auth));
  $("copy").addEventListener("click", () => copy(auth));
  unsaved = true;
}

// What the token server said about where and who; "unknown" is shown as what it is, an error.
function showIdentity(info) {
  const noEnvironment = !info.environmentId && !info.environmentName;
  // The core shows what it has ("unknown user", or " <>" from empty fields): neither names anyone.
  const noUser = !info.email && (info.user === "unknown user" || !info.user.replace(/[<>\s]/g, ""));
  $("environment").textContent = noEnvironment ? "not reported" : info.environment;
  $("user").textContent = noUser ? "not reported" : info.user;
  if (!noEnvironment && !noUser) return;
  const missing = [noEnvironment && "the environment", noUser && "the user who consented"].filter(Boolean);
  const known = [
    !noEnvironment && `environment ${info.environment}`,
    info.legalEntityName && `organisation ${info.legalEntityName}`,
    !noUser && `user ${info.user}`,
    `application ${info.clientId}`,
  ].filter(Boolean);
  $("result-title").textContent = "Connected, but not everything is known";
  show("identity-missing-text", `The server's answer did not name ${missing.join(" or ")}, so this page ` +
    `cannot show ${missing.length > 1 ? "them" : "it"} (Blackbaud names both; another server or a proxy may ` +
    `not). Known: ${known.join(", ")}. Tell the person who runs skysync, and make sure together that this is ` +
    "the environment you meant before they rely on it.");
  $("identity-missing").hidden = false;
}

function showTokens(auth, info, canTest) {
  status("");
  $("result-title").textContent = "Connected";
  showIdentity(info);
  const expires = new Date(info.refreshExpiresAt);
  const days = Math.round((expires - Date.now()) / 86_400_000);
  const utc = info.refreshExpiresAt.replace(/\.\d+/, "");
  $("refresh-expires").textContent =
    `${expires.toLocaleDateString(undefined, { dateStyle: "long" })}, in ${days} days (${utc}), ` +
    "renewed by skysync as it runs";
  showResult(auth);
  if (canTest) {
    $("test-call").hidden = false;
    $("test-call").addEventListener("click", () => testCall(auth));
  }
}

function showCodeBundle(auth, cause) {
  status("");
  const expiresAt = new Date(auth.codeExpiresAt);
  const until = expiresAt.toLocaleTimeString();
  $("result-title").textContent = "Consent received: the bundle must be imported within 5 minutes";
  // Who consented and until when is only known once skysync has exchanged the code.
  $("identity").hidden = true;
  showResult(auth);
  show("run-when", `They must run it within 5 minutes, before ${until}: after that the bundle no longer ` +
    "works. So both of you must be ready at the same time: send it right away.");
  $("code-alternative").hidden = false;
  $("code-cause-text").textContent = `Details: ${technical(cause)}`;
  $("code-cause").hidden = false;
  const tick = () => {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    show("code-warning", left > 0
      ? "This browser could not finish the connection itself, so the bundle holds a one-time authorization " +
        `code that skysync finishes with instead. Time left to import it: ${mmss} (until ${until}).`
      : "The 5 minutes are over: this bundle no longer works. Reload the page and start again.");
    if (left === 0) {
      clearInterval(countdown);
      // An expired code is useless: do not offer it any more.
      for (const id of ["download", "copy"]) $(id).disabled = true;
      $("bundle").textContent = "";
      bundleText = "";
      unsaved = false;
    }
  };
  tick();
  countdown = setInterval(tick, 1000);
}

function exported(auth, how) {
  // The bundle is out: nothing secret needs to stay in this tab's storage.
  auth.clearStorage();
  unsaved = false;
  show("export-note", `${how}. The page has forgotten everything else about this consent.`);
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
  show("test-result", "Trying one call…");
  try {
    const page = await auth.apiGet(TEST_PATH);
    show("test-result", `The call worked: ${page.count ?? "?"} constituents in the environment.`);
  } catch (e) {
    show("test-result", `The call did not work. This does not affect the bundle. Details: ${technical(e)}`);
  }
}

document.addEventListener("securitypolicyviolation", (e) => {
  if (e.effectiveDirective === "connect-src") {
    showError({ name: "ContentSecurityPolicy", message: `this page's Content-Security-Policy does not allow ` +
      `connecting to ${e.blockedURI}. Rebuild with SKYSYNC_CSP_CONNECT_SRC_EXTRA="${new URL(e.blockedURI).origin}" web/build.sh` });
  }
});

// Leaving or reloading before the bundle is saved would lose the consent: ask first.
addEventListener("beforeunload", (e) => {
  if (!unsaved) return;
  e.preventDefault();
  e.returnValue = "";
});

// Back from Blackbaud into a page the browser kept in memory: the same as loading it afresh.
addEventListener("pageshow", (e) => {
  if (e.persisted && !$("setup").hidden) {
    status("");
    backFromBlackbaud();
  }
});

async function main() {
  // Before the wasm loads: the button stays disabled (so the form cannot be submitted natively,
  // and a pressed Enter does nothing) until the handler below can act on it.
  $("setup").addEventListener("submit", submit);
  $("authorize-url").addEventListener("input", nameTheServer);
  $("redirect-change").addEventListener("click", () => {
    $("redirect-uri").readOnly = false;
    $("redirect-uri").focus();
  });
  restoreRemembered();
  if (!$("redirect-uri").value) $("redirect-uri").value = location.origin + location.pathname;
  nameTheServer();
  await init();
  $("authorize").disabled = false;
  if (SkyAuth.isRedirect(landing)) await handleReturn(landing);
  else {
    notARedirect(landing);
    rememberRecipient(landing);
  }
  document.body.dataset.ready = "true";
}

// Back from Blackbaud without finishing there: keep the settings (so Forward and consenting
// still finishes, and Authorize again needs no retyping), but not the secret.
function backFromBlackbaud() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(FORM_KEY));
  } catch { /* not ours */ }
  if (!saved || typeof saved !== "object") {
    sessionStorage.removeItem(FORM_KEY);
    return;
  }
  // The secret (and the key) must not wait in sessionStorage for a redirect that may not come.
  const kept = pick(saved, REMEMBERED);
  if (saved.clientSecret || saved.secretRemoved) kept.secretRemoved = true;
  sessionStorage.setItem(FORM_KEY, JSON.stringify(kept));
  fillForm(kept);
  show("resume-note", "You came back before finishing at Blackbaud. Your settings are kept: enter the secret " +
    "again and continue, or go Forward to Blackbaud and finish there.");
  if (kept.secretRemoved) secretWasRemoved("the page removed it when you came back without finishing at Blackbaud.");
}

// A visit that is not a redirect to check: a consent left halfway (Back from Blackbaud), or an
// error sent back without this tab's state.
function notARedirect(url) {
  const error = new URL(url).searchParams.get("error");
  if (error === null) {
    backFromBlackbaud();
    return;
  }
  const saved = sessionStorage.getItem(FORM_KEY);
  if (saved !== null) {
    // The secret must not wait in sessionStorage for a redirect that will not come.
    sessionStorage.removeItem(FORM_KEY);
    try {
      fillForm(pick(JSON.parse(saved), REMEMBERED));
    } catch { /* not ours */ }
  }
  // Without the state anyone could have written it, so only a plain error code is shown (as
  // the core does for redirects), never a description.
  const code = /^[a-z_]{1,40}$/.test(error) ? ` "${error}"` : "";
  showError({ name: "AuthorizationError", message: `the redirect carries the error${code} but not this ` +
    "tab's state, so nothing more is shown (usually a redirect URI that is not registered exactly)" });
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

// Before the button is enabled, a failure is the page not loading (its wasm above all).
main().catch((e) => showError($("authorize").disabled ? { name: "PageLoadError", message: technical(e) } : e));
