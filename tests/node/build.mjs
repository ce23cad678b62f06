// Ask a build stream for an image with the unmodified @jupyterhub/binderhub-client, the
// way jupyterhub-fancy-profiles does (buildOnly, apiToken as a Bearer token).
//
//   node build.mjs <buildEndpointUrl> <providerSpec> <token>
//
// Prints every event the client yields as one JSON line on stdout (the client's own
// console.log diagnostics go to stderr). Exits 0 after a "ready" event, 1 after a
// "failed" one, 2 if the stream ends with neither.
import "./dom-shim.mjs";
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";

const [buildEndpointUrl, providerSpec, apiToken] = process.argv.slice(2);
if (!buildEndpointUrl || !providerSpec) {
  console.error("usage: node build.mjs <buildEndpointUrl> <providerSpec> <token>");
  process.exit(64);
}

const repo = new BinderRepository(providerSpec, new URL(buildEndpointUrl), {
  apiToken,
  buildOnly: true,
});
console.log = console.error;
let code = 2;
for await (const event of repo.fetch()) {
  process.stdout.write(JSON.stringify(event) + "\n");
  if (event.phase === "ready" || event.phase === "failed") {
    code = event.phase === "ready" ? 0 : 1;
    break;
  }
}
repo.close();
process.exit(code);
