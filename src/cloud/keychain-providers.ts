// The cloud providers this build has, by name.

import type { ProviderFactory } from './keychain.js';
import type { CloudProviderName } from './types.js';

export const PROVIDER_FACTORIES: Partial<Record<CloudProviderName, ProviderFactory>> = {};
