// The Node entry of the skysync-web package: the same bindings as the browser entry
// (skysync_web.js), with the WebAssembly module read from the package directory and
// instantiated synchronously on import, so there is no init() to call. Node 18+ (global fetch).
import { readFileSync } from "node:fs";
import { initSync } from "./skysync_web.js";

initSync({ module: readFileSync(new URL("./skysync_web_bg.wasm", import.meta.url)) });

export * from "./skysync_web.js";
