// The cloud providers this build has, by name.

import { createEcrProvider } from './aws/index.js';
import { createAcrProvider } from './azure.js';
import { createGcrProvider } from './gcp.js';
import type { ProviderFactory } from './keychain.js';
import type { CloudProviderName } from './types.js';

// caCerts and the proxy reach every provider's token endpoints (STS, ECR, Google OAuth, Entra ID, ACR's exchange).
export const PROVIDER_FACTORIES: Record<CloudProviderName, ProviderFactory> = {
  ecr: ({ env, extraHosts, ...transport }) => createEcrProvider(env, { extraHosts, ...transport }),
  gcr: ({ env, extraHosts, ...transport }) => createGcrProvider(env, { extraHosts, ...transport }),
  acr: ({ env, extraHosts, ...transport }) => createAcrProvider(env, { extraHosts, ...transport }),
};
