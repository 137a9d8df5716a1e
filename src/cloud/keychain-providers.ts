// The cloud providers this build has, by name.

import { createEcrProvider } from './aws/index.js';
import { createAcrProvider } from './azure.js';
import { createGcrProvider } from './gcp.js';
import type { ProviderFactory } from './keychain.js';
import type { CloudProviderName } from './types.js';

export const PROVIDER_FACTORIES: Record<CloudProviderName, ProviderFactory> = {
  ecr: ({ env, extraHosts }) => createEcrProvider(env, { extraHosts }),
  gcr: ({ env, extraHosts, caCerts }) =>
    createGcrProvider(env, { extraHosts, ...(caCerts ? { caCerts } : {}) }),
  acr: ({ env, extraHosts, caCerts }) =>
    createAcrProvider(env, { extraHosts, ...(caCerts ? { caCerts } : {}) }),
};
