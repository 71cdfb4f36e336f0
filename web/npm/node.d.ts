// The Node entry: the browser entry's API, already initialised (no init() needed).
export * from "./skysync_web.js";
