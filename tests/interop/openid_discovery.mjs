// openid-client 6 against the reference platform: OIDC discovery at the issuer, then an authorization URL
// with PKCE (S256). Usage: node openid_discovery.mjs ISSUER CLIENT_ID REDIRECT_URI; prints one JSON object.
import * as client from "openid-client";

const [issuer, clientId, redirectUri] = process.argv.slice(2);
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
console.log(
  JSON.stringify({
    issuer: metadata.issuer,
    token_endpoint: metadata.token_endpoint,
    authorization_url: authorizationUrl.href,
    pkce_s256: metadata.supportsPKCE("S256"),
  }),
);
