// Runs store-contract.mjs in Node through the installed skysync-web package:
//   node store-contract-node.mjs RECORDS.json   (SKYSYNC_* variables as for the examples)
// Prints the contract's result as JSON.
import { readFile } from "node:fs/promises";
import { SkyAuth } from "skysync-web";
import { configFromEnv } from "./node-common.mjs";
import { storeContract } from "./store-contract.mjs";

const records = JSON.parse(await readFile(process.argv[2], "utf8"));
console.log(JSON.stringify(await storeContract(SkyAuth, configFromEnv(), records)));
