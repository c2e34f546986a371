// A real OpenID Connect provider for docchat's tests: panva's certified oidc-provider,
// on a loopback port, with a login form of its own and no consent step.
//
// Started by tests/auth/provider.py (the `oidc_provider` fixture); configured by the
// environment it is given:
//   OIDC_PORT           the loopback port to listen on (the issuer is http://127.0.0.1:PORT)
//   OIDC_JWKS_FILE      a JSON {"keys": [...]} of private JWKs: the first signs, the rest
//                       are still published (a key rotation restarts the provider with a
//                       new first key)
//   OIDC_USERS_FILE     a JSON {"alice": {"password", "name", "email", "groups"}, ...},
//                       read at every sign-in and token, so a test can move a person
//                       between groups at the provider
//   OIDC_REDIRECT_URIS  comma-separated redirect URIs of the `docchat` client (the page)
//   OIDC_POST_LOGOUT_URIS  comma-separated post-logout redirect URIs of that client
//
// Clients: `docchat` (the page's confidential client), `docchat-tool` (a tool that gets
// access tokens for the API) and `docchat-short` (the same, with 3-second tokens).
// Access tokens are JWTs (RFC 9068) for the resource they name: `urn:docchat:api`
// unless the request says otherwise (a test asks for `urn:other:api` to get a token
// for another audience). Every client secret is "<client id>-secret".
import fs from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(fs.readFileSync(process.env.OIDC_JWKS_FILE, "utf8"));
const usersFile = process.env.OIDC_USERS_FILE;
const split = (value) => (value || "").split(",").filter(Boolean);
const API = "urn:docchat:api";
const TOOL_REDIRECT = "http://127.0.0.1/tool-callback";

function users() {
  return JSON.parse(fs.readFileSync(usersFile, "utf8"));
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const configuration = {
  clients: [
    {
      client_id: "docchat",
      client_secret: "docchat-secret",
      // The tool's redirect too: a test gets an ID token issued to docchat itself.
      redirect_uris: [...split(process.env.OIDC_REDIRECT_URIS), TOOL_REDIRECT],
      post_logout_redirect_uris: split(process.env.OIDC_POST_LOGOUT_URIS),
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    ...["docchat-tool", "docchat-short"].map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      redirect_uris: [TOOL_REDIRECT],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    })),
  ],
  jwks,
  cookies: { keys: ["docchat-test-provider-cookie-key"] },
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username"],
    email: ["email"],
    groups: ["groups"],
  },
  scopes: ["openid", "profile", "email", "groups", "api"],
  // Groups in the ID token itself (as Keycloak, Entra ID and Okta can be set to do),
  // not only from the userinfo endpoint.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!doctype html><html><head><title>Sign out</title></head><body>
          ${form}<p>Sign out of the test provider?</p>
          <button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
          </body></html>`;
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: "api",
        audience: resource,
        accessTokenFormat: "jwt",
        accessTokenTTL: client.clientId === "docchat-short" ? 3 : 600,
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  async findAccount(ctx, id) {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: user.name,
          preferred_username: id,
          email: user.email,
          groups: user.groups,
        };
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    // Groups in the JWT access token too, as the API reads them from there.
    if (token.kind !== "AccessToken" || !token.accountId) return undefined;
    const user = users()[token.accountId];
    return user ? { groups: user.groups } : undefined;
  },
  // No consent step: every client here is first-party. A fresh grant holds what the
  // request asked for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(" "));
    grant.addOIDCClaims(["groups"]);
    for (const resource of Object.keys(ctx.oidc.resourceServers || {})) {
      grant.addResourceScope(resource, "api");
    }
    await grant.save();
    return grant;
  },
  ttl: { IdToken: 600, AuthorizationCode: 60, Session: 3600, Grant: 3600, Interaction: 600 },
};

const provider = new Provider(issuer, configuration);
const handle = provider.callback();

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => resolve(new URLSearchParams(body)));
    req.on("error", reject);
  });
}

function page(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
  res.end(html);
}

function loginForm(uid, message) {
  return `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
    <h1>Test provider</h1>${message ? `<p id="login-error">${escape(message)}</p>` : ""}
    <form method="post" action="/interaction/${escape(uid)}/login">
      <input id="login" name="login" autocomplete="username">
      <input id="password" name="password" type="password" autocomplete="current-password">
      <button id="sign-in" type="submit">Sign in</button>
    </form></body></html>`;
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt } = details;
  if (req.method === "GET") {
    if (prompt.name === "login") return page(res, 200, loginForm(uid));
    // Consent is granted by loadExistingGrant; nothing else is asked.
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  const form = await readForm(req);
  const login = form.get("login") || "";
  const user = users()[login];
  if (!user || user.password !== form.get("password")) {
    return page(res, 200, loginForm(uid, "Wrong user name or password."));
  }
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: login } },
    { mergeWithLastSubmission: false },
  );
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/interaction/")) {
    interaction(req, res).catch((err) => page(res, 400, `<p id="error">${escape(err.message)}</p>`));
    return;
  }
  handle(req, res);
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${issuer}\n`);
});
