// oidc-provider configured like rsp for the OAuth benchmark (api/http/benches/oauth.rs):
// two confidential clients (client_credentials, client_secret_basic, scope
// "api"), one whose access tokens are ES256 JWTs, one with RS256 JWTs;
// introspection enabled (on a third client's opaque tokens, see below). Listens on 127.0.0.1, port from PORT (0 = any free
// port) and prints one JSON line {"issuer","port","clients":{...}} when ready.
//
// Run: node server.mjs   (after `npm install` in this directory)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const secret = () => randomBytes(32).toString('base64url');
const clients = {
  ES256: { client_id: 'bench-es256', client_secret: secret() },
  RS256: { client_id: 'bench-rs256', client_secret: secret() },
  // oidc-provider refuses to introspect JWT access tokens ("Structured JWT
  // Tokens cannot be introspected"), so introspection is measured with this
  // client's opaque access tokens (stored in its in-memory adapter).
  opaque: { client_id: 'bench-opaque', client_secret: secret() },
};
const algOf = (clientId) => (clientId === clients.RS256.client_id ? 'RS256' : 'ES256');
const RESOURCE = 'https://api.bench.invalid';

const provider = new Provider('http://127.0.0.1', {
  clients: Object.entries(clients).map(([alg, c]) => ({
    ...c,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api',
    id_token_signed_response_alg: alg === 'RS256' ? 'RS256' : 'ES256',
  })),
  jwks: { keys: [{ ...ec, kid: 'ec', alg: 'ES256', use: 'sig' }, { ...rsa, kid: 'rsa', alg: 'RS256', use: 'sig' }] },
  scopes: ['api'],
  ttl: { ClientCredentials: 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // The default policy (any confidential client may introspect), made
    // explicit so the provider does not print a notice on every start.
    introspection: { enabled: true, allowedPolicy: (ctx, client) => client.clientAuthMethod !== 'none' },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'api',
        audience: RESOURCE,
        accessTokenTTL: 3600,
        accessTokenFormat: client.clientId === clients.opaque.client_id ? 'opaque' : 'jwt',
        jwt: { sign: { alg: algOf(client.clientId) } },
      }),
    },
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  console.log(JSON.stringify({ port: actual, clients }));
});
