// openid-client 6 against the reference platform: OIDC discovery at the issuer, then an authorization URL
// with PKCE (S256), and with a system client and its key a client credentials grant (private_key_jwt).
// Usage: node openid_discovery.mjs ISSUER CLIENT_ID REDIRECT_URI [SYSTEM_CLIENT_ID KEY_FILE]; prints one
// JSON object (never a token).
import { readFileSync } from "node:fs";
import * as client from "openid-client";

const [issuer, clientId, redirectUri, systemClientId, keyFile] = process.argv.slice(2);
if (!issuer || !clientId || !redirectUri) {
  console.error("usage: node openid_discovery.mjs ISSUER CLIENT_ID REDIRECT_URI");
  process.exit(2);
}
// Loopback tests run over http://, which openid-client refuses unless told otherwise.
const config = await client.discovery(new URL(issuer), clientId, undefined, undefined, {
  execute: [client.allowInsecureRequests],
});
const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: "openid fhirUser",
  code_challenge: challenge,
  code_challenge_method: "S256",
  state: client.randomState(),
});
const metadata = config.serverMetadata();
let systemToken = null;
if (systemClientId && keyFile) {
  const jwk = JSON.parse(readFileSync(keyFile, "utf8"));
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: jwk.crv }, false, ["sign"]);
  const system = await client.discovery(new URL(issuer), systemClientId, undefined, client.PrivateKeyJwt({ key, kid: jwk.kid }), {
    execute: [client.allowInsecureRequests],
  });
  const tokens = await client.clientCredentialsGrant(system, { scope: "system/Patient.rs" });
  systemToken = { token_type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expires_in };
}
console.log(
  JSON.stringify({
    issuer: metadata.issuer,
    token_endpoint: metadata.token_endpoint,
    authorization_url: authorizationUrl.href,
    pkce_s256: metadata.supportsPKCE("S256"),
    system_token: systemToken,
  }),
);
