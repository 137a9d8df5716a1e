// The contract between the cloud providers (src/cloud/aws, gcp, azure) and their
// users: fetches with IaaS keychains, and the RegistryToken controller.

export const CLOUD_PROVIDER_NAMES = ['ecr', 'gcr', 'acr'] as const;
export type CloudProviderName = (typeof CLOUD_PROVIDER_NAMES)[number];

/** A credential the registry accepts with HTTP Basic auth, as `docker login` would use it. */
export interface MintedRegistryCredential {
  username: string;
  password: string;
  /** When the registry stops accepting it. */
  expiresAt: Date;
}

/**
 * Whose cloud identity mints the credential: the operator Pod's own (environment,
 * projected token files, metadata servers), or keys held in a tenant's Secret.
 */
export type CloudIdentity =
  | { kind: 'ambient' }
  | { kind: 'secret'; namespace: string; name: string; data: Readonly<Record<string, Buffer>> };

export interface CloudRegistryProvider {
  readonly name: CloudProviderName;
  /**
   * Whether the host (lower-case, with :port when not 443) is one of this provider's
   * registries: its built-in patterns plus the hosts configured for it.
   */
  servesHost(host: string): boolean;
  /** Mints a fresh credential (no caching here); rejects with an Error whose message holds no secret. */
  mint(registryHost: string, identity: CloudIdentity, signal: AbortSignal): Promise<MintedRegistryCredential>;
}

/** Environment variables the providers read (endpoint overrides, identity files); process.env in production. */
export type CloudEnvironment = Readonly<Record<string, string | undefined>>;
