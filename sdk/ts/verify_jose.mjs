// Runs the jose snippet of authbridge-verify/README.md, as written there, against a live authbridge.
//   node verify_jose.mjs --base-url URL --username U --password P --work-dir DIR
// DIR gets the snippet as a module beside a node_modules link. Prints `verify-node: N passed`.

import { readFileSync, writeFileSync, symlinkSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    "base-url": { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    "work-dir": { type: "string" },
  },
});
const base = args["base-url"];
const fail = (what) => {
  console.log(`sdk/run: verify-node: ${what}`);
  process.exit(1);
};

const readme = readFileSync(join(here, "..", "..", "authbridge-verify", "README.md"), "utf8");
const section = readme.split("## The same in Node")[1];
const code = /```js\n([\s\S]*?)```/.exec(section)[1];
const dir = args["work-dir"];
writeFileSync(join(dir, "snippet.mjs"), code);
if (!existsSync(join(dir, "node_modules"))) symlinkSync(join(here, "node_modules"), join(dir, "node_modules"));
process.env.AUTHBRIDGE_URL = base;
const { userIdOf } = await import(pathToFileURL(join(dir, "snippet.mjs")).href);

const call = async (path, body, token) => {
  const response = await fetch(base + path, {
    method: body ? "POST" : "GET",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) fail(`${path} answered ${response.status}`);
  return response.json();
};
const pair = await call("/api/token/", { username: args.username, password: args.password });
const { pk } = await call("/rest-auth/user/", undefined, pair.access);
const [head, payload, signature] = pair.access.split(".");
const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
const forged = [head, Buffer.from(JSON.stringify({ ...claims, user_id: pk + 1 })).toString("base64url"), signature].join(".");
const { kid } = JSON.parse(Buffer.from(head, "base64url").toString());
const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", kid })).toString("base64url")}.${payload}.`;

let passed = 0;
if ((await userIdOf(pair.access)) !== pk) fail("the access token did not give the user's pk");
passed += 1;
for (const [name, token] of [["a refresh token", pair.refresh], ["a forged payload", forged], ["alg none", unsigned]]) {
  const accepted = await userIdOf(token).then(() => true, () => false);
  if (accepted) fail(`${name} was accepted`);
  passed += 1;
}
console.log(`verify-node: ${passed} passed`);
